"""Self-tests of racelab.harness.runner on toy actors."""
import threading

import pytest

from racelab.harness.runner import ActorError, ActorTimeout, run_concurrently
from racelab.harness.syncpoints import SyncPoints
from racelab import race_point


def test_actors_run_in_named_threads_and_overlap():
    meet = threading.Barrier(2, timeout=10)  # each returns only once the other is running too
    closed = []

    def actor():
        meet.wait()
        return threading.current_thread().name

    result = run_concurrently({"a": actor, "b": actor}, timeout=10, teardown=lambda: closed.append(1))
    assert result.values == {"a": "a", "b": "b"}
    assert result.overlapped()
    assert closed == [1, 1]
    assert "a" in result.timeline() and "ms" in result.timeline()


def test_sequential_actors_do_not_count_as_overlapping():
    with SyncPoints(timeout=10) as sp:
        sp.order(("a.end", "b.start"))
        result = run_concurrently({"a": lambda: race_point("a.end"), "b": lambda: race_point("b.start")}, timeout=10)
    assert result.actors["a"].end <= result.actors["b"].end
    assert result.actors["b"].start is not None


def test_a_failure_is_reraised_with_the_actor_name():
    def broken():
        raise KeyError("file upload 7")

    with pytest.raises(ActorError, match=r"Actor 'writer' raised KeyError: 'file upload 7'") as info:
        run_concurrently({"writer": broken, "reader": lambda: None}, timeout=10)
    assert info.value.actor == "writer"
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.result.actors["reader"].error is None


def test_a_timeout_names_the_running_actor_and_its_wait():
    with SyncPoints(timeout=60) as sp:
        sp.order(("never", "reader.check"))
        with pytest.raises(ActorTimeout) as info:
            run_concurrently({"reader": lambda: race_point("reader.check"), "writer": lambda: None}, timeout=0.3)
    message = str(info.value)
    assert "Actors still running after 0.3 s: 'reader'" in message
    assert "'reader' at 'reader.check' for 'never'" in message
    assert info.value.actors == ["reader"]
