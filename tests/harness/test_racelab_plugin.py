"""Self-tests of racelab.harness.plugin: run pytest in a subprocess on small generated test files."""
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGISTERED = any(ep.name == "racelab" for ep in importlib.metadata.entry_points(group="pytest11"))

TESTS = textwrap.dedent('''
    import threading
    import pytest
    from racelab import race_point

    @pytest.mark.race(runs=2)
    def test_seeded(race_scheduler):
        race_scheduler.run({"a": lambda: race_point("p"), "b": lambda: race_point("p")})

    def test_fails_with_sections(race_scheduler, race_history, sync_points):
        race_point("here", n=1)
        with race_history.op("w", "import", 1):
            pass
        race_scheduler.run({"a": lambda: None})
        assert False, "toy failure"

    def test_swallowed_timeout_errors_at_teardown(sync_points):
        sync_points.timeout = 0.1
        sync_points.order(("never", "x"))
        thread = threading.Thread(target=lambda: pytest.raises(TimeoutError, race_point, "x"))
        thread.start()
        thread.join()
''')


def pytest_run(tmp_path, *args):
    (tmp_path / "test_toy.py").write_text(TESTS)
    plugin = [] if REGISTERED else ["-p", "racelab.harness.plugin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider", "-p", "no:warnings", *plugin,
                           "--rootdir", str(tmp_path), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_runs_seeds_and_failure_sections(tmp_path):
    out = pytest_run(tmp_path, "--race-seed", "40", "--race-runs", "3", "-rA", "test_toy.py").stdout
    assert "racelab: seed 40 (replay with --race-seed 40)" in out
    for seed in (40, 41, 42):
        assert f"test_seeded[seed={seed}] PASSED" in out or f"test_toy.py::test_seeded[seed={seed}]" in out
    assert "Replay: pytest --race-seed 40 'test_toy.py::test_fails_with_sections'" in out
    assert "racelab trace" in out and "MainThread" in out and "here {'n': 1}" in out
    assert "racelab history" in out and "history.jsonl" in out
    assert "A sync-point wait timed out in a thread that did not raise it" in out
    assert "3 failed, 4 passed, 1 error" in out  # fails_with_sections runs with each seed too


def test_marker_runs_and_replay_of_one_seed(tmp_path):
    out = pytest_run(tmp_path, "-v", "test_toy.py::test_seeded").stdout
    assert len(re.findall(r"test_seeded\[seed=\d+\] PASSED", out)) == 2
    replay = pytest_run(tmp_path, "-v", "--race-seed", "7", "test_toy.py::test_seeded").stdout
    assert "1 passed" in replay and "[seed=" not in replay


def test_options_and_fixtures_are_documented(tmp_path):
    help_text = pytest_run(tmp_path, "--help").stdout
    for option in ("--race-seed", "--race-runs", "--race-timeout", "--race-strategy", "--race-depth"):
        assert option in help_text
    fixtures = pytest_run(tmp_path, "--fixtures", "test_toy.py").stdout
    for name in ("sync_points", "remote_sync_points", "race_history", "race_checker", "race_scheduler", "concurrently"):
        assert f"{name} --" in fixtures or f"\n{name}\n" in fixtures or name in fixtures
    markers = pytest_run(tmp_path, "--markers").stdout
    assert "race(runs=None, strategy=None)" in markers


def test_a_bad_marker_says_how_to_write_it(tmp_path):
    (tmp_path / "test_bad.py").write_text("import pytest\n@pytest.mark.race(runs=0)\ndef test_x(): pass\n")
    result = pytest_run(tmp_path, "test_bad.py")
    assert "@pytest.mark.race(runs=K, strategy=S)" in result.stdout + result.stderr
