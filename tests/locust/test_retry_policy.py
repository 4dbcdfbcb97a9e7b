"""The retry policy of the load users' imports, as pure functions: which failures, how long, how often."""
import pytest

from racelab.locustfiles._retry import (BACKOFF_CAP, BACKOFF_FIRST, MAX_ATTEMPTS, RETRY_AFTER_CAP, next_wait,
                                        retry_after_seconds, retry_wait)


@pytest.mark.parametrize("header, seconds", [("3", 3.0), (" 0 ", 0.0), ("1.5", 1.5), (None, None), ("", None),
                                             ("-1", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)])
def test_retry_after_is_read_as_seconds_or_not_at_all(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_is_honoured_up_to_its_cap():
    assert retry_wait(1, 2.0) == 2.0
    assert retry_wait(3, 0.0) == 0.0
    assert retry_wait(1, 120.0) == RETRY_AFTER_CAP


def test_without_retry_after_the_backoff_doubles_up_to_its_cap():
    waits = [retry_wait(attempt) for attempt in range(1, 8)]
    assert waits[:3] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST]
    assert max(waits) == BACKOFF_CAP and waits == sorted(waits)


@pytest.mark.parametrize("status", [0, 502, 503, 504])
def test_a_failure_without_an_answer_is_retried(status):
    assert next_wait(status, "2", 1, now=100.0, deadline=130.0) == 2.0


@pytest.mark.parametrize("status", [200, 201, 400, 401, 413, 422, 500])
def test_an_answer_is_never_retried(status):
    assert next_wait(status, "1", 1, now=100.0, deadline=130.0) is None


def test_retries_stop_at_the_last_attempt_and_at_the_deadline():
    assert next_wait(503, None, MAX_ATTEMPTS - 1, now=0.0, deadline=30.0) is not None
    assert next_wait(503, None, MAX_ATTEMPTS, now=0.0, deadline=30.0) is None
    assert next_wait(503, "3", 1, now=0.0, deadline=3.0) == 3.0
    assert next_wait(503, "3", 1, now=0.0, deadline=2.9) is None
