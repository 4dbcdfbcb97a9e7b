"""Decide whether, and after how long, a load user sends a failed import again.

Only to a racelab target: each import there carries an ``Idempotency-Key``, a
fresh uuid4 kept for all its attempts, and the target answers a repeat with the
first attempt's import instead of a second one. Upstream Label Studio knows no
such header and would import twice, so its imports get one attempt. A failure
is retried only when the target gave no answer worth judging: a dropped
connection (status 0, e.g. a gunicorn worker killed mid-request) or a
502/503/504. Nothing here sends, sleeps or imports Locust.
"""
import uuid

IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUSES = frozenset({0, 502, 503, 504})
MAX_ATTEMPTS = 5          # attempts in all, the first included
RETRY_AFTER_CAP = 5.0     # seconds: a longer Retry-After is cut to this
BACKOFF_FIRST, BACKOFF_CAP = 0.25, 2.0  # seconds before the 2nd attempt when no Retry-After, doubling per attempt


def new_idempotency_key():
    """Return a fresh key for one import (a uuid4), to be sent with each of its attempts."""
    return str(uuid.uuid4())


def retry_after_seconds(header):
    """Return the seconds a ``Retry-After`` header asks for, or ``None`` when absent or not delta-seconds.

    An HTTP-date is not read (racelab sends seconds); the caller backs off instead.
    """
    try:
        seconds = float(str(header).strip())
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def retry_wait(attempt, retry_after=None):
    """Return the seconds to wait after failed attempt ``attempt`` (1-based) before the next one.

    The ``Retry-After`` seconds when the target gave them, capped at
    ``RETRY_AFTER_CAP``; otherwise ``BACKOFF_FIRST`` doubled per attempt, capped at ``BACKOFF_CAP``.
    """
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP)
    return min(BACKOFF_FIRST * 2 ** (attempt - 1), BACKOFF_CAP)


def next_wait(status_code, retry_after_header, attempt, now, deadline):
    """Return the seconds to wait before sending the failed attempt again, or ``None`` not to retry.

    ``None`` when ``status_code`` is not retryable, ``attempt`` was the
    ``MAX_ATTEMPTS``-th, or the wait would end past ``deadline`` (a ``now``-like clock).
    """
    if status_code not in RETRYABLE_STATUSES or attempt >= MAX_ATTEMPTS:
        return None
    wait = retry_wait(attempt, retry_after_seconds(retry_after_header))
    return wait if now + wait <= deadline else None


def fault_name(status_code):
    """Name a retryable failure for the counters: ``reset`` for no answer (status 0), else the status."""
    return "reset" if status_code == 0 else str(status_code)
