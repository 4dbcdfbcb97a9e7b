"""An import's end, announced: what lets a poll of its status wait for it (``?wait=N``) instead of asking again.

The code that makes an import final (``services._finish_import_if_done`` and
``services._fail_import``) calls :func:`announce_final` once that commit is
done; a poll that finds the import unfinished calls :func:`wait_until_final`,
which blocks up to N seconds on a Redis stream of that import. The entry stays
(``KEPT_SECONDS``), so a commit that lands between the poll's read and its wait
is still seen: the wait returns at once. Redis streams rather than pub/sub for
that reason: a message published before its listener subscribed would be lost.

A lost announcement (Redis down at that moment) costs the waiter its wait,
never a wrong answer: the poll then answers with what it reads, as any poll.
"""
import logging

from django.conf import settings

from label_studio.core.jobs import redis_configured, redis_connection
from racelab import race_point

KEPT_SECONDS = 300  # longer than any client waits between its import and its poll
logger = logging.getLogger(__name__)


def announce_final(import_id):
    """Tell every poll waiting on import ``import_id`` that it is final; call after the commit that made it so."""
    if not redis_configured():
        return
    from redis.exceptions import RedisError

    key = _key(import_id)
    try:
        with _redis().pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"final": "1"}, maxlen=1)
            pipe.expire(key, KEPT_SECONDS)
            pipe.execute()
    except RedisError as exc:  # the waiter's wait runs out and it reads the row, as a poll without ?wait would
        logger.warning("could not announce that import %s is final: %s", import_id, exc)


def wait_until_final(import_id, seconds):
    """Block up to ``seconds`` until import ``import_id`` has been announced final; return whether it was.

    Returns False at once without Redis, or when Redis does not answer.
    """
    if seconds <= 0 or not redis_configured():
        return False
    from redis.exceptions import RedisError

    race_point("import.poll_waiting", import_id=import_id)
    try:
        return bool(_redis().xread({_key(import_id): "0-0"}, count=1, block=max(1, int(seconds * 1000))))
    except RedisError:
        return False


def _key(import_id):
    return f"racelab:import-final:{import_id}"


def _redis():
    """The import queues' Redis with a read timeout past the longest wait: its own pool, so that a
    blocked read holds no connection the enqueues need, and a Redis that stopped answering does not
    hold the request past its wait (the queues' pool has no read timeout)."""
    return redis_connection(settings.RQ_QUEUES["default"]["URL"], connect_timeout=2,
                            read_timeout=settings.IMPORT_POLL_WAIT_MAX_SECONDS + 5)
