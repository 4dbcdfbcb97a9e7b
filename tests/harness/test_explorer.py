"""Self-tests of the explorer, its strategies and conflict model, on toy actors (no Django, no Redis)."""
import pytest

from racelab import race_point
from racelab.harness.conflicts import NOTHING, access, conflict
from racelab.harness.explorer import Explorer
from racelab.harness.narrate import describe_step
from racelab.harness.scheduler import Scheduler, WorkerKilled
from racelab.harness.strategies import Schedule


def check_then_act(scheduler):
    """Two actors insert key k if absent; return the anomalies (both inserted: a lost check)."""
    table, inserts = {}, []

    def actor(me):
        def run():
            race_point("toy.read", key="k")
            present = "k" in table
            race_point("toy.write", key="k")
            if not present:
                table["k"] = me
                inserts.append(me)
        return run

    scheduler.run({"a": actor("a"), "b": actor("b")}, timeout=10)
    return [f"both {' and '.join(inserts)} inserted k"] if len(inserts) > 1 else []


def test_conflicts_follow_what_readers_can_see():
    read = access("db.execute", {"verb": "SELECT", "tables": ["t"], "table": "t"})
    in_tx = access("db.execute", {"verb": "INSERT", "tables": ["t"], "table": "t", "autocommit": False})
    auto = access("db.execute", {"verb": "INSERT", "tables": ["t"], "table": "t", "autocommit": True})
    commit = access("db.commit", {"tables": ["t"]})
    assert not conflict(read, in_tx), "an uncommitted write is invisible to another reader"
    assert conflict(read, auto) and conflict(read, commit) and conflict(in_tx, in_tx)
    assert not conflict(read, access("db.execute", {"verb": "SELECT", "tables": ["t"], "table": "t"}))
    assert conflict(access("import.x", {"import_id": 7}), access("import.y", {"import_id": 7}))
    assert not conflict(access("import.x", {"import_id": 7}), access("import.y", {"import_id": 8}))
    assert access("db.on_commit", {}) == NOTHING and access("(start)", {}) == NOTHING


def test_a_schedule_travels_as_text():
    schedule = Schedule(((3, "reader#1"), (7, "rq-thread-1")), (9, "kill"))
    assert Schedule.decode(schedule.encode()) == Schedule(schedule.choices, schedule.fault)
    assert Schedule.decode("-") == Schedule()
    with pytest.raises(ValueError, match="STEP=ACTOR or fault=STEP:KIND"):
        Schedule.decode("3:reader")
    with pytest.raises(ValueError, match="Unknown fault 'explode'"):
        Schedule.decode("fault=3:explode")


@pytest.mark.parametrize("strategy", ["pos", "pct", "random"])
def test_each_strategy_finds_the_toy_race_and_replays_it_exactly(strategy):
    explorer = Explorer(1, strategy, budget=60, nodeid="tests/toy.py::test_toy", confirm=10)
    result = explorer.explore(check_then_act)

    assert result.found_at is not None, f"{strategy} did not find check-then-act in 60 runs"
    finding = result.finding
    assert finding.replays == (10, 10), "a replay of the shrunk schedule broke the invariant every time"
    assert finding.switches == 1, f"shrunk to {finding.schedule.encode()}: one switch is enough for this race"
    assert f"--race-schedule '{finding.schedule.encode()}'" in finding.replay and "test_toy" in finding.replay
    replayed = Explorer(finding.seed, strategy, budget=1, schedule=finding.schedule, shrink=False, confirm=0)
    assert replayed.explore(check_then_act).found_at == 1


def test_nothing_is_found_where_there_is_no_race():
    def atomic(scheduler):
        scheduler.run({name: lambda: race_point("toy.step", key=name) for name in ("a", "b")}, timeout=10)
        return []
    result = Explorer(1, "pos", budget=25).explore(atomic)
    assert (result.runs, result.found_at, result.finding) == (25, None, None)


def test_a_fault_is_explored_after_a_probe_run_counts_where_it_can_go():
    kinds = []

    def job(scheduler):
        def worker():
            try:
                race_point("rq.dequeue", job_id="j")
                for step in range(3):
                    race_point("toy.job", job_id="j", step=step)
                race_point("rq.job.end", job_id="j", ok=True)
            except WorkerKilled:
                kinds.append("killed")
        scheduler.run({"w": worker}, timeout=10)
        return ["killed"] if kinds and kinds.pop() else []

    explorer = Explorer(2, "pos", budget=10, shrink=False, confirm=0)
    explorer.workers = 1
    result = explorer.explore(job, faults=("kill",))
    assert result.found_at == 2, "run 1 probes without a fault; run 2 kills the job at one of its points"
    assert result.finding.schedule.fault[1] == "kill"


def test_the_free_baseline_schedules_nothing():
    scheduler = Scheduler(5, "free")
    check_then_act(scheduler)
    assert scheduler.decisions == [] and scheduler.schedule == Schedule()


def test_steps_read_as_words():
    assert describe_step("db.execute", {"verb": "INSERT", "table": "t", "autocommit": True}) == \
        "runs INSERT into t (commits on its own)"
    assert describe_step("db.commit", {"tables": ["a", "b"]}) == "commits its transaction (wrote a, b)"
    assert describe_step("rq.dequeue", {"job": "app.jobs.run", "queue": "high", "worker": "w1"}) == \
        "takes run from high (worker w1)"
