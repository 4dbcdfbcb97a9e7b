"""racelab load's options: bounded runs, loopback targets, errors that say what to change, and clean cancels."""
import signal
import subprocess
import sys

import psutil
import pytest

from racelab.dbwatch import WatchError
from racelab.cli import main
from racelab.loadrun import LoadError, check_host, load_and_report, locust_command, seconds, token_from_file


@pytest.mark.parametrize("text, expected", [("60s", 60), ("2m", 120), ("1h30m", 5400), ("45", 45)])
def test_durations_read_like_locusts(text, expected):
    assert seconds(text) == expected


def test_a_bad_duration_says_how_to_write_one():
    with pytest.raises(LoadError, match="write e.g. 60s"):
        seconds("soon")


@pytest.mark.parametrize("host", ["http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:80"])
def test_loopback_targets_are_allowed(host):
    check_host(host, allow_remote=False)


def test_other_targets_need_an_explicit_allowance():
    with pytest.raises(LoadError, match="--allow-remote-host"):
        check_host("http://10.0.0.5:8080", allow_remote=False)


@pytest.mark.parametrize("options, message", [
    ({"users": 0}, "--users 0 is out of bounds"),
    ({"users": 501}, "--users 501 is out of bounds"),
    ({"run_time": "2h"}, "--run-time 2h is out of bounds"),
    ({"host": "http://127.0.0.1:1", "token": ""}, "needs its API token"),
    ({"host": "http://127.0.0.1:1", "token": "k", "fixes": "none"}, "change the served app only"),
    ({"db_url": "postgresql://127.0.0.1/x"}, "--db-url names the database of a --host"),
    ({"host": "http://127.0.0.1:1", "token": "k", "db_url": "sqlite:///x"}, "is not a PostgreSQL URL"),
])
def test_unbounded_or_inconsistent_runs_are_refused_before_anything_starts(options, message, monkeypatch, tmp_path):
    monkeypatch.delenv("RACELAB_TOKEN", raising=False)
    with pytest.raises(LoadError, match=message):
        load_and_report(out=tmp_path, **options)


def test_a_database_that_cannot_be_watched_is_named_before_any_load(tmp_path):
    with pytest.raises(WatchError, match="cannot watch the database postgresql://127.0.0.1:1/app: .* — check the URL"):
        load_and_report(host="http://127.0.0.1:1", token="k", db_url="postgresql://127.0.0.1:1/app", out=tmp_path)
    assert not (tmp_path / "results" / "load_stats.csv").exists()


def test_an_unknown_scenario_lists_the_known_ones(tmp_path):
    with pytest.raises(LoadError, match="uploads, batch, pdf, mixed, rapid or all"):
        locust_command("soak", "http://127.0.0.1:1", 1, 1, "1s", tmp_path)


def test_think_time_reaches_locust_and_a_bad_one_is_refused_first(tmp_path):
    argv = locust_command("uploads", "http://127.0.0.1:1", 1, 1, "1s", tmp_path, think_time="2-5")
    assert argv[argv.index("--think-time") + 1] == "2-5"
    assert "--think-time" not in locust_command("uploads", "http://127.0.0.1:1", 1, 1, "1s", tmp_path)
    with pytest.raises(LoadError, match="write e.g. 2-5 or 3"):
        locust_command("uploads", "http://127.0.0.1:1", 1, 1, "1s", tmp_path, think_time="slow")


def test_a_cancelled_load_run_stops_every_process_it_started(tmp_path, eventually):
    """SIGTERM (a cancelled CI job) reaches the served app's gunicorn, rq workers and Locust, not just racelab."""
    output = tmp_path / "load.log"
    run = subprocess.Popen([sys.executable, "-m", "racelab.cli", "load", "--scenario", "uploads", "--users", "1",
                            "--run-time", "5m", "--db", "sqlite", "--workers", "1", "--out", str(tmp_path)],
                           stdout=output.open("w"), stderr=subprocess.STDOUT)

    def started():
        assert run.poll() is None, f"racelab load ended before it was cancelled:\n{output.read_text()[-3000:]}"
        children = psutil.Process(run.pid).children(recursive=True)
        commands = " ".join(command_line(child) for child in children)
        return children if "gunicorn" in commands and "locust" in commands else None

    try:
        children = eventually(started, 120, "racelab load to serve the app and start Locust")
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"still running after racelab load was cancelled: {[command_line(p) for p in alive]}"
    finally:
        run.kill()


def command_line(process):
    """Return the process's command line, or "" once it has exited (start-up commands come and go)."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return ""


def test_a_targets_token_comes_from_the_environment_or_a_file_and_the_error_says_both(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("RACELAB_TOKEN", raising=False)
    with pytest.raises(LoadError, match=r"set RACELAB_TOKEN=KEY or pass --token-file PATH"):
        load_and_report(host="http://127.0.0.1:1", out=tmp_path)
    (tmp_path / "token").write_text("key-from-a-file\n")
    assert token_from_file(tmp_path / "token") == "key-from-a-file"
    with pytest.raises(LoadError, match=r"--token-file .*missing: No such file.*RACELAB_TOKEN"):
        token_from_file(tmp_path / "missing")

    assert main(["load", "--host", "http://127.0.0.1:1", "--token", "KEY"]) == 2  # would be in every process listing
    assert "--token is gone" in capsys.readouterr().out
    assert main(["serve", "--user-token", "KEY"]) == 2
    assert "Set RACELAB_USER_TOKEN=KEY or pass --user-token-file PATH" in capsys.readouterr().out
