"""Self-tests of racelab.harness.syncpoints and racelab.harness.inject on toy code: no service, no sleeps."""
import threading

import pytest

from racelab.harness import inject
from racelab.harness.runner import run_concurrently
from racelab.harness.syncpoints import SyncPoints, SyncPointTimeout
from racelab.harness import race
from racelab import race_point


def test_order_is_obeyed(sync_points):
    # "second" is released from the barrier with "first", but must not pass B before A.
    for _ in range(20):
        sync_points.clear()
        sync_points.order(("A", "B"))
        log = []

        def first():
            log.append("a")
            race_point("A")

        def second():
            race_point("B")
            log.append("b")

        run_concurrently({"first": first, "second": second}, timeout=10)
        assert log == ["a", "b"]
        sync_points.assert_order("A", "B")
        assert [h.actor for h in sync_points.trace] == ["first", "second"]


def test_chain_and_context_filter():
    with SyncPoints(timeout=10) as sp:
        sp.order((("job.start", {"job": "run_import"}), "reader.check", "job.end"))
        log = []

        def reader():
            race_point("reader.check")
            log.append("read")

        def worker():
            race_point("job.start", job="other")  # does not match the filter: releases nobody
            log.append("other")
            race_point("job.start", job="run_import")
            race_point("job.end")
            log.append("end")

        run_concurrently({"reader": reader, "worker": worker}, timeout=10)
        sp.assert_order(("job.start", {"job": "run_import"}), "reader.check", "job.end")
        assert log.index("read") < log.index("end")
        assert sp.passed("job.start") == 2
        assert sp.passed(("job.start", lambda ctx: ctx["job"] == "other")) == 1


def test_a_point_passed_as_an_ordering_says_how_to_write_it():
    with pytest.raises(ValueError, match="is one point, not an ordering"):
        SyncPoints().order(("job.start", {"job": "run_import"}))


def test_missing_predecessor_times_out_with_a_clear_message():
    with SyncPoints(timeout=0.2) as sp:
        sp.order((("writer.commit", {"id": 7}), "reader.check"))
        race_point("writer.commit", id=8)
        with pytest.raises(SyncPointTimeout) as info:
            race_point("reader.check", id=7)
    message = str(info.value)
    assert "'MainThread' waited" in message
    assert "at 'reader.check' {'id': 7}" in message
    assert "Never reached: 'writer.commit' {'id': 7} (passed only with other contexts: {'id': 8})" in message
    assert "--race-timeout" in message
    assert sp.timeouts == [info.value]


def test_a_timeout_shows_where_the_other_threads_are():
    release = threading.Event()

    def idle_worker_loop():
        release.wait(10)
    worker = threading.Thread(target=idle_worker_loop, name="rq-thread-9")
    worker.start()
    try:
        with SyncPoints(timeout=0.2) as sp, pytest.raises(SyncPointTimeout) as info:
            sp.wait("job.start")
    finally:
        release.set()
        worker.join(5)
    where = str(info.value).split("Where the other threads of this process are")[1]
    assert "'rq-thread-9'" in where and "idle_worker_loop" in where and "'MainThread'" not in where


def test_a_cycle_names_every_waiter():
    with SyncPoints(timeout=0.3) as sp:
        sp.order(("A", "B"), ("B", "A"))
        with pytest.raises(Exception) as info:
            run_concurrently({"x": lambda: race_point("A"), "y": lambda: race_point("B")}, timeout=5)
    # Whichever times out first names the other: a waiter stays listed until it has explained itself.
    messages = [str(run.error) for run in info.value.result.actors.values()]
    assert any("Also waiting: 'y' at 'B'" in m for m in messages) or any("Also waiting: 'x' at 'A'" in m
                                                                         for m in messages), messages


def test_callbacks_delays_and_failures_act_and_are_traced():
    seen = []
    with SyncPoints(timeout=5) as sp:
        sp.on("A", lambda ctx: seen.append(ctx["n"]))
        sp.delay("A", 0.01)
        sp.fail(("B", {"n": 2}), ValueError("boom"))
        race_point("A", n=1)
        race_point("B", n=1)
        with pytest.raises(ValueError, match="boom"):
            race_point("B", n=2)
    assert seen == [1]
    a, b1, b2 = sp.trace
    assert a.actions == ("call <lambda>", "delay 10ms")
    assert b1.actions == ()
    assert b2.actions == ("fail ValueError: boom",)
    assert b2.time > a.time


def test_assert_order_catches_a_violated_order():
    with SyncPoints() as sp:
        race_point("B")
        race_point("A")
    with pytest.raises(AssertionError, match=r"'B' was first passed at #0 .* before 'A' at #1"):
        sp.assert_order("A", "B")
    with pytest.raises(AssertionError, match="'C' was never passed"):
        sp.assert_order("A", "C")


def test_enable_installs_and_disable_restores_and_releases():
    assert race.installed() is None
    sp = SyncPoints(timeout=30)
    sp.order(("never", "held"))
    done = threading.Event()

    def held():
        race_point("arriving")
        race_point("held")
        done.set()

    with sp:
        assert race.installed() is sp
        thread = threading.Thread(target=held)
        thread.start()
        sp.wait("arriving")
    # Disabling released the waiter without its predecessor, and raised nothing in it.
    thread.join(10)
    assert done.is_set() and race.installed() is None and not sp.timeouts


def test_wait_blocks_until_a_point_is_passed():
    with SyncPoints(timeout=10) as sp:
        thread = threading.Thread(target=race_point, args=("ready",), kwargs={"n": 1})
        thread.start()
        sp.wait(("ready", {"n": 1}))
        assert sp.passed("ready") == 1
        thread.join()


def test_injection_spec_parses_into_labelled_actions():
    injections = inject.parse("commit=200ms, worker=0.3s,enqueue=fail,job.end=exit:3")
    assert [(i.point, i.kind) for i in injections] == [
        ("db.commit", "delay"), ("rq.job.start", "delay"), ("rq.enqueue", "fail"), ("job.end", "exit")]
    assert injections[0].arg == pytest.approx(0.2) and injections[3].arg == 3
    with SyncPoints() as sp:
        inject.apply("enqueue=fail,commit=1ms", sp)
        race_point("db.commit")
        with pytest.raises(inject.InjectedRedisDown) as info:
            race_point("rq.enqueue")
    import redis
    assert isinstance(info.value, redis.exceptions.ConnectionError)
    assert sp.trace[0].actions == ("delay 1ms (inject commit=1ms)",)
    assert sp.trace[1].actions[0].endswith("(inject enqueue=fail)")


@pytest.mark.parametrize("spec, message", [
    ("comit=1ms", "use one of commit (db.commit), worker (rq.job.start), enqueue (rq.enqueue)"),
    ("commit", "has no value"),
    ("commit=12", "bad value '12'"),
])
def test_bad_injection_specs_say_what_to_write(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        inject.parse(spec)


def test_exit_set_by_a_test_never_fires_in_the_test_process():
    with SyncPoints() as sp:
        inject.apply("job.end=exit:3", sp)
        race_point("job.end")  # would os._exit(3) in any other process
    assert sp.trace[0].actions == ()
