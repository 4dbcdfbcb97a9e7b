"""Self-tests of racelab.harness.scheduler on a toy check-then-act bug of depth 2."""
import threading

import pytest

from racelab.harness.runner import ActorError
from racelab.harness.scheduler import Scheduler, replay_command
from racelab.harness.syncpoints import SyncPoints
from racelab.harness import race
from racelab import race_point

ACTORS, STEPS, DEPTH = 2, 6, 2  # each toy actor takes 3 steps: start→read, read→write, write→end


def check_then_act(scheduler):
    """Run two actors that insert a key if absent; return True when both inserted it (the bug)."""
    table, inserts = {}, []

    def actor(me):
        def run():
            race_point("toy.read")
            present = "k" in table
            race_point("toy.write")
            if not present:
                table["k"] = me
                inserts.append(me)
        return run

    scheduler.run({"a": actor("a"), "b": actor("b")}, timeout=10)
    return len(inserts) > 1


def test_pct_finds_a_depth_2_bug_within_its_bound():
    # PCT finds a depth-d bug with probability >= 1/(n * k**(d-1)) per run: 1/12 here.
    bound = 1 / (ACTORS * STEPS ** (DEPTH - 1))
    found = [seed for seed in range(120) if check_then_act(Scheduler(seed, "pct", depth=DEPTH, steps=STEPS))]
    assert found, "PCT never found the check-then-act bug in 120 runs"
    runs_to_find = found[0] + 1
    assert runs_to_find <= 1 / bound, f"first found after {runs_to_find} runs; expected within {1 / bound:g}"
    assert len(found) / 120 >= bound, f"found in {len(found)}/120 runs, below PCT's bound {bound:.3f}"


def test_a_toy_run_takes_the_steps_the_bound_assumes():
    scheduler = Scheduler(1, "pct", steps=STEPS)
    check_then_act(scheduler)
    assert [d.step for d in scheduler.decisions if d.kind == "run"] == list(range(1, STEPS + 1))


def test_random_strategy_finds_the_bug_too():
    assert any(check_then_act(Scheduler(seed, "random")) for seed in range(40))


@pytest.mark.parametrize("strategy", ["pct", "random"])
def test_a_replayed_seed_makes_the_same_decisions(strategy):
    runs = []
    for _ in range(2):
        scheduler = Scheduler(seed=1234, strategy=strategy, steps=STEPS)
        bug = check_then_act(scheduler)
        runs.append((bug, [str(d) for d in scheduler.decisions]))
    assert runs[0] == runs[1]
    interleavings = set()
    for seed in range(8):
        scheduler = Scheduler(seed, strategy, steps=STEPS)
        check_then_act(scheduler)
        interleavings.add(tuple(str(d) for d in scheduler.decisions))
    assert len(interleavings) > 1, "different seeds should explore different interleavings"


def test_an_actor_blocked_on_a_lock_held_by_a_parked_actor_never_deadlocks():
    lock = threading.Lock()

    def holder():
        with lock:
            race_point("toy.holding")  # parks while holding the lock

    def waiter():
        race_point("toy.before")
        with lock:
            race_point("toy.got")

    blocked = 0
    for seed in range(12):
        scheduler = Scheduler(seed, "random", blocked_after=0.05)
        scheduler.run({"holder": holder, "waiter": waiter}, timeout=10)
        blocked += any(d.kind == "blocked" for d in scheduler.decisions)
    assert blocked, "no seed made an actor wait on the lock held by a parked one"


def test_the_scheduler_passes_hits_on_to_sync_points():
    with SyncPoints(timeout=10) as sp:
        sp.order(("toy.b", "toy.a"))
        scheduler = Scheduler(7, "pct")
        scheduler.run({"a": lambda: race_point("toy.a"), "b": lambda: race_point("toy.b")}, timeout=10)
        assert race.installed() is sp
    sp.assert_order("toy.b", "toy.a")
    assert {h.actor for h in sp.trace} == {"a", "b"}


def test_a_failure_carries_the_seed_and_the_replay_command():
    def broken():
        race_point("toy.x")
        raise RuntimeError("lost update")

    scheduler = Scheduler(99, "random", nodeid="tests/test_x.py::test_y[seed=99]")
    with pytest.raises(ActorError) as info:
        scheduler.run({"a": broken}, timeout=10)
    notes = "\n".join(info.value.__notes__)
    assert "seed=99 strategy=random" in notes
    assert "Replay: pytest --race-seed 99 'tests/test_x.py::test_y'" in notes


def test_replay_command_keeps_other_parameters():
    assert replay_command(5, "t.py::f[x-seed=5]") == "pytest --race-seed 5 't.py::f[x]'"
    assert replay_command(5, None) == "pytest --race-seed 5 -k <test>"


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="use one of pos, pct, random, free"):
        Scheduler(1, "dfs")


@pytest.mark.race(runs=3, strategy="random")
def test_race_marker_gives_one_seed_per_run(race_scheduler, request):
    assert race_scheduler.strategy_name == "random"
    assert f"seed={race_scheduler.seed}" in request.node.name
