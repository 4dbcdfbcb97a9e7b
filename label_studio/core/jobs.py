"""Job dispatch: the one function every enqueue of the import flow goes through.

:func:`start_job_async_or_sync` sends a job to an RQ queue when the transaction
that dispatched it commits — delayed jobs included — and runs it inline after
that commit when no Redis is configured. A job dispatched inside a transaction
that rolls back is never sent and never runs. Outside a transaction the job is
sent at once. A job its caller waits for anyway can run in the caller's own
request instead, after the same commit (``in_request=True``).

django-rq's own deferral (``COMMIT_MODE="on_db_commit"``) defers only
``enqueue_call``, looks only at the default database and returns ``None`` for a
deferred job; this dispatcher closes those holes and pre-assigns the job id, so
the caller can record the job on its row inside the same transaction.
"""
import contextlib
import contextvars
import functools
import logging
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction

from label_studio.core.events import event
from label_studio.core.fixes import fix_enabled
from racelab import race_point


def redis_configured():
    """Return True when RQ has a Redis to talk to (``REDIS_URL`` is set)."""
    return bool(settings.REDIS_URL)


def queue(name):
    """Return the RQ queue ``name`` on this process's shared connection to its Redis.

    django-rq's ``get_queue`` opens a new connection pool on every call, which
    costs a TCP connect and a handshake per enqueue; one pool per Redis URL is
    reused here (redis-py pools are thread-safe and reset themselves after a fork).
    """
    import django_rq

    return django_rq.get_queue(name, commit_mode="auto", connection=redis_connection(settings.RQ_QUEUES[name]["URL"]))


@functools.lru_cache(maxsize=16)
def redis_connection(url, connect_timeout=5, read_timeout=None):
    """Return this process's connection pool to the Redis at ``url``, one per set of timeouts.

    A Redis behind a dead link must not hang the request: connecting gives up after
    ``connect_timeout`` seconds, and a read after ``read_timeout`` (None: a read waits, as an
    enqueue's reply may). Callers with other timeouts get their own pool.
    """
    from redis import Redis

    return Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=read_timeout)


class QueueUnreachable(Exception):
    """Raised by :func:`require_queue` when the queue's Redis does not answer: nothing can be enqueued now."""


def require_queue(queue_name):
    """Raise QueueUnreachable unless the Redis of queue ``queue_name`` answers a PING; do nothing without Redis."""
    if not redis_configured():
        return
    try:
        queue(queue_name).connection.ping()
    except Exception as exc:  # redis-py raises ConnectionError, TimeoutError, or an OSError from the socket
        raise QueueUnreachable(f"{type(exc).__name__}: {exc}") from exc


def live_workers(queue_name):
    """Return how many RQ workers listening on ``queue_name`` are alive (their heartbeat key not expired).

    RQ's worker registry keeps a killed worker's name until someone cleans it;
    a name whose worker hash has expired is not counted (as ``Worker.all`` drops it). Without Redis
    the job runs inline, so there is always one.
    """
    if not redis_configured():
        return 1
    from rq import Worker

    rq_queue = queue(queue_name)
    keys = Worker.all_keys(queue=rq_queue)
    # One EXISTS over the names: Worker.all reads and builds every worker to the same end, a round trip each.
    return rq_queue.connection.exists(*keys) if keys else 0


#: RQ job statuses of a job that will not run again; any other status Redis holds will run, or is running.
ENDED_STATUSES = ("finished", "failed", "stopped", "canceled")


def live_jobs(job_ids, dead_after=None):
    """Return the ids among ``job_ids`` of jobs Redis holds and that have not ended (see ENDED_STATUSES).

    One round trip, plus one per started or queued job. A job Redis does not know (lost
    at enqueue, or expired) is not live, nor is a finished, failed, stopped or
    canceled one, nor a started one whose worker :func:`holder_alive` finds dead
    (heartbeat older than ``dead_after``, default ``IMPORT_WORKER_DEAD_AFTER_SECONDS``):
    RQ would call it abandoned only after its timeout; nor a queued one that is
    in no queue (:func:`_in_queue`). Without Redis, or with
    Redis unreachable, nothing is known to be live: the empty set.
    """
    return _look_up(job_ids, dead_after)[0]


def abandoned_jobs(job_ids):
    """Return the ids among ``job_ids`` of jobs Redis holds as queued or started that will not run on.

    A started job whose worker is dead by ``IMPORT_WORKER_DEAD_AFTER_SECONDS``,
    or a queued one in no queue (see :func:`live_jobs`). A job that ended, or that Redis does not know, is not
    abandoned; nothing is when Redis cannot be asked.
    """
    return _look_up(job_ids, None)[1]


def _look_up(job_ids, dead_after):
    """Return ``(live job ids, abandoned job ids)``; see :func:`live_jobs` and :func:`abandoned_jobs`."""
    job_ids = [job_id for job_id in job_ids if job_id]
    if not job_ids or not redis_configured():
        return set(), set()
    from redis.exceptions import RedisError

    rq_queue = queue("high")  # every queue shares one Redis (RQ_QUEUES), and job hashes are global to it
    try:
        found = rq_queue.job_class.fetch_many(job_ids, connection=rq_queue.connection)
    except RedisError as exc:
        event("job.lookup_failed", level=logging.WARNING, jobs=len(job_ids), error=repr(exc))
        return set(), set()
    dead_after = settings.IMPORT_WORKER_DEAD_AFTER_SECONDS if dead_after is None else dead_after
    live, abandoned = set(), set()
    for job in filter(None, found):
        status = job.get_status(refresh=False)
        if status is None or status in ENDED_STATUSES:
            continue
        if status == "started" and job.worker_name and holder_alive(f"{job.worker_name} {job.id}", dead_after) is False:
            abandoned.add(job.id)
        elif status == "queued" and not _in_queue(rq_queue.connection, job):
            abandoned.add(job.id)
        else:
            live.add(job.id)
    return live, abandoned


def _in_queue(connection, job):
    """Return whether queued ``job`` is still in its queue's list.

    A worker pops a job into RQ's intermediate queue before it marks it
    started; one killed in between leaves the job "queued" in no queue, which
    RQ cleans up only minutes later. Such a job will not run: it is lost.
    """
    from rq import Queue

    return connection.lpos(Queue.redis_queue_namespace_prefix + job.origin, job.id) is not None


REQUEST_HOLDER = "request"  # the worker name of a job run in the request that dispatched it (in_request=True)
REQUEST_JOB_PREFIX = f"{REQUEST_HOLDER}-"  # and how its id begins
_request_job = contextvars.ContextVar("request_job", default="")


def current_holder():
    """Return ``"<worker name> <job id>"`` of the job running this code, or ``""`` outside a job.

    A claim records it, so that the reconciler can ask RQ whether its holder still runs (:func:`holder_alive`).
    A job run in its request is held by ``REQUEST_HOLDER``, which RQ does not know (:func:`held_by_a_request`).
    """
    from rq import get_current_job

    job = get_current_job()
    if job is not None and job.worker_name:
        return f"{job.worker_name} {job.id}"
    return f"{REQUEST_HOLDER} {_request_job.get()}" if _request_job.get() else ""


def held_by_a_request(holder):
    """Return True when ``holder`` (from :func:`current_holder`) is a request running its own job.

    Such a holder sends no heartbeat, and RQ knows nothing of it: the caller
    judges its claim as a lease, stale once it is older than a worker's dead-after.
    """
    return holder.split(" ", 1)[0] == REQUEST_HOLDER


def holder_alive(holder, dead_after):
    """Return True when ``holder`` (from :func:`current_holder`) still runs its job, False when it is dead, None when unknown.

    Dead: RQ no longer holds the worker's key, the worker runs another job (or
    none: its work horse died), or its last heartbeat is older than
    ``dead_after`` seconds (killed, or stopped). Unknown: no holder recorded,
    no Redis, Redis unreachable, or a request holding it (:func:`held_by_a_request`) — the caller
    falls back to a timeout.
    """
    if not holder or held_by_a_request(holder) or not redis_configured():
        return None
    from redis.exceptions import RedisError
    from rq import Worker
    from rq.utils import now

    worker_name, job_id = holder.split(" ", 1)
    connection = queue("high").connection
    try:
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=connection)
        if worker is None:
            return False
        current = worker.get_current_job_id()
    except RedisError as exc:
        event("job.lookup_failed", level=logging.WARNING, holder=holder, error=repr(exc))
        return None
    beat = worker.last_heartbeat
    return current == job_id and beat is not None and (now() - beat).total_seconds() <= dead_after


def job_name(func):
    """Return the dotted path RQ uses for ``func``."""
    return f"{func.__module__}.{func.__qualname__}"


def start_job_async_or_sync(func, *args, queue_name="default", in_seconds=0, job_id=None,
                            using=DEFAULT_DB_ALIAS, on_enqueue_failed=None, in_request=False, **kwargs):
    """Dispatch ``func(*args, **kwargs)`` once the current transaction on ``using`` commits.

    Return the job id, always — also when the job is deferred or runs inline.
    With fix R2 off a plain job is sent at once, before the commit; with fix R4
    off a delayed job, or one dispatched on a non-default database, is sent at
    once. A failed enqueue (Redis down) is logged as ``job.enqueue_failed`` and
    does not raise: the committed rows are the durable intent, and the
    reconciler (fix R8) re-dispatches what was lost. ``on_enqueue_failed(exc)``,
    if given, is then called where the enqueue failed (after the commit, for a
    deferred job), so that the caller can tell its row and its client.

    With ``in_request=True`` the job is never sent: it runs in this thread once
    the transaction commits, for a caller that would only wait for a worker to
    run it. Its id, recorded like any other, begins with ``REQUEST_JOB_PREFIX``; Redis never holds it, so a
    process killed before the job's claim leaves it to the reconciler as a lost
    job (fix R8), and its claims are held by a request (:func:`held_by_a_request`).
    """
    job_id = job_id or f"{REQUEST_JOB_PREFIX if in_request else ''}{uuid.uuid4().hex}"
    name = job_name(func)
    if in_request:
        race_point("job.dispatch", job=name, job_id=job_id, deferred=True)
        transaction.on_commit(lambda: _run_in_request(func, args, kwargs, job_id), using=using)
        return job_id
    delayed = in_seconds > 0 or using != DEFAULT_DB_ALIAS
    defer = fix_enabled("R4") if delayed else fix_enabled("R2")

    def send():
        try:
            race_point("job.enqueue", job=name, job_id=job_id, queue=queue_name)
            _send(func, args, kwargs, queue_name, in_seconds, job_id)
        except Exception as exc:  # Redis down, pickling error: never lose the caller's commit over it
            event("job.enqueue_failed", level=logging.ERROR, job=name, job_id=job_id, error=repr(exc))
            if on_enqueue_failed is not None:
                on_enqueue_failed(exc)
            return
        event("job.enqueued", job=name, job_id=job_id, queue=queue_name, in_seconds=in_seconds)

    race_point("job.dispatch", job=name, job_id=job_id, deferred=defer)
    if defer:
        transaction.on_commit(send, using=using)
    else:
        send()
    return job_id


def _send(func, args, kwargs, queue_name, in_seconds, job_id):
    if not redis_configured():
        if in_seconds > 0:
            timer = threading.Timer(in_seconds, _run_in_own_thread, (func, args, kwargs))
            timer.daemon = True
            timer.start()
        else:
            _run_inline(func, args, kwargs)
        return
    target = queue(queue_name)
    if in_seconds > 0:
        target.enqueue_in(timedelta(seconds=in_seconds), func, *args, job_id=job_id, **kwargs)
    else:
        target.enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id)


def _run_inline(func, args, kwargs):
    """Run a job in this thread; its failure is logged like a worker's, never raised into the dispatcher."""
    try:
        func(*args, **kwargs)
    except Exception as exc:
        event("job.inline_failed", level=logging.ERROR, job=job_name(func), error=repr(exc))


def _run_in_request(func, args, kwargs, job_id):
    token = _request_job.set(job_id)
    try:
        _run_inline(func, args, kwargs)
    finally:
        _request_job.reset(token)


def _run_in_own_thread(func, args, kwargs):
    close_old_connections()
    try:
        _run_inline(func, args, kwargs)
    finally:
        connections.close_all()


def job(func):
    """Mark ``func`` as a job: race points ``job.start``/``job.end`` and events around each run.

    The wrapper neither retries nor swallows exceptions; the job itself decides
    what a failure means for its rows.
    """

    @functools.wraps(func)
    def run(*args, **kwargs):
        name = job_name(func)
        race_point("job.start", job=name, args=args)
        event("job.started", job=name, args=args)
        try:
            with _heartbeats():
                result = func(*args, **kwargs)
        except BaseException as exc:
            event("job.crashed", level=logging.ERROR, job=name, args=args, error=repr(exc))
            race_point("job.end", job=name, args=args, ok=False)
            raise
        event("job.finished", job=name, args=args)
        race_point("job.end", job=name, args=args, ok=True)
        return result

    return run


@contextlib.contextmanager
def _heartbeats():
    """Refresh the RQ worker's heartbeat every ``WORKER_HEARTBEAT_SECONDS`` while its job runs; nothing outside RQ.

    RQ's ``SimpleWorker`` sends none during a job (its forking ``Worker`` does,
    every ``job_monitoring_interval``, 30 s by default): without these a slow
    job's worker would look dead to the reconciler (fix R12). A process killed
    or stopped stops its heartbeats with it, which is what the reconciler sees.
    """
    from rq import Worker, get_current_job

    job = get_current_job()
    if job is None or not job.worker_name:
        yield
        return
    from redis.exceptions import RedisError
    from rq.utils import now, utcformat

    key, connection, stop = Worker.redis_worker_namespace_prefix + job.worker_name, job.connection, threading.Event()

    def beat():
        while not stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            try:
                if connection.exists(key):  # never re-create the key of a worker RQ expired
                    connection.hset(key, "last_heartbeat", utcformat(now()))
            except RedisError as exc:
                event("job.heartbeat_failed", level=logging.WARNING, worker=job.worker_name, error=repr(exc))

    beating = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()
