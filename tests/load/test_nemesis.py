"""The nemesis faults only the processes it is given, on its schedule, records each fault, and always resumes.

The targets are child processes this test starts itself (``sleep``); the load run
gives the nemesis the served app's pids (:meth:`racelab.serving.ServedApp.pids`).
"""
import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from racelab.harness.django_plugin import wait_until
from racelab.loadrun import LoadError, load_and_report
from racelab.nemesis import Nemesis, NemesisError, parse_kinds

WAIT_S = 10


@pytest.fixture
def sleepers():
    processes = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def targets_of(processes):
    return lambda tree=False: {"worker": [p.pid for p in processes if p.poll() is None], "redis": []}


def wait_for(condition, what):
    wait_until(condition, WAIT_S, what, interval=0.01)


def state(process):
    return psutil.Process(process.pid).status()


def faults(results):
    return [json.loads(line) for line in (results / "faults.jsonl").read_text().splitlines()]


def test_a_pause_stops_one_target_for_its_span_and_resumes_it(sleepers, tmp_path):
    with Nemesis(["pause-worker"], targets_of(sleepers), tmp_path, every=0.6, hold=0.5,
                 deadline=time.monotonic() + 1.0) as nemesis:
        wait_for(lambda: any(state(p) == psutil.STATUS_STOPPED for p in sleepers), "a paused target")
        wait_for(lambda: nemesis.events, "the fault to end")
    wait_for(lambda: all(state(p) != psutil.STATUS_STOPPED for p in sleepers), "SIGCONT to reach every target")
    [fault] = faults(tmp_path)  # the deadline leaves room for one fault only
    assert fault["kind"] == "pause-worker" and fault["signal"] == "SIGSTOP"
    assert fault["pids"][0] in {p.pid for p in sleepers} and len(fault["pids"]) == 1
    assert 0.45 <= fault["end"] - fault["start"] < 2


def test_a_paused_target_is_resumed_when_the_load_fails_mid_fault(sleepers, tmp_path):
    with pytest.raises(RuntimeError, match="load failed"):
        with Nemesis(["pause-worker"], targets_of(sleepers), tmp_path, every=60.1, hold=60,
                     deadline=time.monotonic() + 120):
            wait_for(lambda: any(state(p) == psutil.STATUS_STOPPED for p in sleepers), "a paused target")
            raise RuntimeError("load failed")
    wait_for(lambda: all(state(p) != psutil.STATUS_STOPPED for p in sleepers), "SIGCONT to reach every target")
    [fault] = faults(tmp_path)
    assert fault["end"] - fault["start"] < 5  # cut short by the stop, not held for 60 s


def test_a_kill_signals_only_a_given_pid_and_a_role_without_any_skips(sleepers, tmp_path):
    with Nemesis(["kill-worker", "kill-redis"], targets_of(sleepers), tmp_path, every=0.1, hold=0.05,
                 deadline=time.monotonic() + 2) as nemesis:
        wait_for(lambda: len(nemesis.events) >= 2, "two faults")
    killed, skipped = faults(tmp_path)[:2]
    assert killed["kind"] == "kill-worker" and killed["signal"] == "SIGKILL"
    victim = next(p for p in sleepers if p.pid == killed["pids"][0])
    assert victim.wait(WAIT_S) == -signal.SIGKILL
    assert skipped == {**skipped, "kind": "kill-redis", "pids": []}


def test_kill_workers_kills_every_worker(sleepers, tmp_path):
    with Nemesis(["kill-workers"], targets_of(sleepers), tmp_path, every=0.2, hold=0.1,
                 deadline=time.monotonic() + 0.35) as nemesis:
        wait_for(lambda: nemesis.events, "the fault to end")
    [fault] = faults(tmp_path)
    assert sorted(fault["pids"]) == sorted(p.pid for p in sleepers)
    assert [p.wait(WAIT_S) for p in sleepers] == [-signal.SIGKILL] * 2


def test_a_fault_on_one_process_picks_a_busy_one(sleepers, tmp_path):
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # a worker mid-job, beside idle ones
    try:
        with Nemesis(["kill-worker"], targets_of([*sleepers, spinner]), tmp_path, every=0.2, hold=0.1,
                     deadline=time.monotonic() + 0.35) as nemesis:
            wait_for(lambda: nemesis.events, "the fault to end")
        assert faults(tmp_path)[0]["pids"] == [spinner.pid]
        assert spinner.wait(WAIT_S) == -signal.SIGKILL
    finally:
        spinner.kill()
        spinner.wait()


class ScriptedProbe:
    """A probe that reports the app unrecovered for its first ``unhealthy`` calls of ``pending``."""

    def __init__(self, unhealthy):
        self.unhealthy, self.calls, self.reads = unhealthy, 0, 0

    def caught(self):
        self.reads += 1  # read as the fault begins, then as it ends
        return {("import", self.reads)}

    def pending(self, caught):
        self.calls += 1
        assert caught == {("import", 1), ("import", 2)}
        return "the health check answered 503" if self.calls <= self.unhealthy else None


def test_each_fault_records_how_long_the_app_took_to_recover(sleepers, tmp_path):
    probe = ScriptedProbe(unhealthy=3)  # recovered at the 4th probe, 0.5 s apart
    with Nemesis(["pause-worker"], targets_of(sleepers), tmp_path, every=0.2, hold=0.1, probe=probe,
                 deadline=time.monotonic() + 0.35, recovery_window=10):
        wait_for(lambda: any(state(p) == psutil.STATUS_STOPPED for p in sleepers), "the fault to start")
    # leaving the block waited for the last fault's recovery, bounded by the window
    [fault] = faults(tmp_path)
    assert probe.calls == 4 and fault["caught"] == 2
    assert 1.4 <= fault["recovered_s"] < 5, fault


def test_a_fault_the_app_does_not_recover_from_says_why_and_how_long_it_was_watched(sleepers, tmp_path):
    with Nemesis(["pause-worker"], targets_of(sleepers), tmp_path, every=0.2, hold=0.1, probe=ScriptedProbe(10 ** 6),
                 deadline=time.monotonic() + 0.35, recovery_window=1.2):
        wait_for(lambda: any(state(p) == psutil.STATUS_STOPPED for p in sleepers), "the fault to start")
    [fault] = faults(tmp_path)
    assert fault["recovered_s"] is None and fault["not_recovered"] == "the health check answered 503"
    assert 1.2 <= fault["probed_s"] < 5, fault


def test_the_schedule_stops_by_itself_and_starts_no_fault_that_would_outlast_the_run(sleepers, tmp_path):
    with Nemesis(["pause-worker"], targets_of(sleepers), tmp_path, every=0.05, hold=0.04,
                 deadline=time.monotonic() + 0.03) as nemesis:
        wait_for(lambda: nemesis.finished, "the nemesis to stop at its deadline")
    assert faults(tmp_path) == []


@pytest.mark.parametrize("text", ["kill-everything", "", "pause-worker,,nope"])
def test_an_unknown_fault_lists_the_known_ones(text):
    with pytest.raises(NemesisError, match="use a comma-separated list of kill-worker, kill-workers, pause-worker"):
        parse_kinds(text)


@pytest.mark.parametrize("options, message", [
    ({"nemesis": "kill-web", "host": "http://127.0.0.1:1", "token": "k"}, "drop --host"),
    ({"nemesis": "pause-postgres", "db": "sqlite"}, "needs the PostgreSQL racelab starts"),
    ({"nemesis": "pause-redis", "nemesis_every": 3, "nemesis_for": 3}, "must be above 0 and below"),
    ({"nemesis": "stop-the-world"}, "unknown fault stop-the-world"),
])
def test_a_nemesis_that_cannot_run_is_refused_before_anything_starts(options, message, tmp_path):
    with pytest.raises(LoadError, match=message):
        load_and_report(out=tmp_path, **options)


def test_the_served_app_names_only_processes_it_started(request):
    from racelab import proctree
    from racelab.serving import served_app

    db = request.config.getoption("race_db") if request.config.getoption("race_db") in ("sqlite", "postgres") else "postgres"
    with served_app(db=db, workers=2, web_workers=2) as app:
        pids, tree = app.pids(), app.pids(tree=True)
        started = proctree.tree_pids([p.pid for p in app.processes]
                                     + [s.process.pid for s in app.services.values()])
    assert len(pids["worker"]) == 2 and len(pids["web"]) == 2 and len(pids["redis"]) == 1
    assert {pid for role in tree.values() for pid in role} <= started  # nothing of the rest of the machine
    if db == "postgres":
        assert pids["postgres"] == [app.services["postgres"].process.pid] and len(tree["postgres"]) > 1
    else:
        assert pids["postgres"] == []
