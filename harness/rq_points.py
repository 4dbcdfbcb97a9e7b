"""Built-in race points of RQ and django-rq: enqueue, deferral, dequeue, job start and end, in any app.

:func:`install` adds them once per process (:func:`racelab.harness.points.install` calls it), on
rq 2 and rq 3 alike and on every worker class (``Worker``, ``SimpleWorker`` and their subclasses).
With no controller installed a point costs one function call.

- ``rq.enqueue`` (queue, job, job_id, scheduled) — just before RQ pushes a job to Redis:
  ``Queue.enqueue_job`` (``enqueue``, ``enqueue_call``) and ``Queue.schedule_job``
  (``enqueue_in``, ``enqueue_at``; ``scheduled`` is then the ISO time it is due);
- ``rq.deferred`` (queue, job, until, setting) — when django-rq holds an enqueue back instead of
  pushing it: until the transaction commits (django-rq 4's default ``RQ["COMMIT_MODE"] =
  "on_db_commit"``) or until the request ends (``"request_finished"``, or ``RQ["AUTOCOMMIT"] =
  False`` before django-rq 4). A :class:`DeferredEnqueueWarning` says so, since then a job can
  never start before its transaction commits, whatever the test forces;
- ``rq.dequeue`` (queue, job, job_id, worker) — when a worker has taken a job, before it runs it;
- ``rq.job.start`` (job, job_id, args) and ``rq.job.end`` (job, job_id, args, ok, error) — around
  the job's function, in the process that runs it (a forking worker's work horse).

An enqueue on a queue with ``is_async=False`` also warns (:class:`InlineQueueWarning`): the job
then runs inline, inside the dispatching transaction, where the race cannot be seen.
"""
from __future__ import annotations

import functools
import warnings

from racelab.harness import race
from racelab.harness.race import race_point

__all__ = ["install", "InlineQueueWarning", "DeferredEnqueueWarning"]

_installed = False


class InlineQueueWarning(UserWarning):
    """An RQ queue with ``is_async=False`` ran a job inline, where the commit-versus-dispatch race cannot be seen."""


class DeferredEnqueueWarning(UserWarning):
    """django-rq held an enqueue back until the commit or the request's end, so the job cannot start before it."""


def install() -> None:
    """Wrap RQ's enqueue, schedule, perform_job and Job.perform (and django-rq's deferral); once per process."""
    global _installed
    if _installed:
        return
    from rq.job import Job
    from rq.queue import Queue

    try:
        from rq.worker import BaseWorker as worker_base  # rq >= 2: Worker and SimpleWorker both derive from it
    except ImportError:  # pragma: no cover - older rq
        from rq.worker import Worker as worker_base

    _around(Queue, "enqueue_job", before=_on_enqueue)
    _around(Queue, "schedule_job", before=_on_schedule)
    _around(worker_base, "perform_job", before=lambda self, job, queue, *a, **k: race_point(
        "rq.dequeue", queue=queue.name, job=job.func_name, job_id=job.id, worker=self.name))
    _wrap_perform(Job)
    try:
        from django_rq.queues import DjangoRQ
    except Exception:  # noqa: BLE001 - no django-rq, or Django not configured: plain rq only
        DjangoRQ = None
    if DjangoRQ is not None:
        _around(DjangoRQ, "enqueue_call", before=_on_django_rq_call)
    _installed = True


def _around(cls, name, before):
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        if race.installed() is not None:
            before(self, *args, **kwargs)
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


def _on_enqueue(queue, job, *args, **kwargs):
    if not queue._is_async:
        warnings.warn(InlineQueueWarning(
            f"RQ queue {queue.name!r} has is_async=False: job {job.func_name} runs inline, inside the dispatching "
            "transaction, so the commit-versus-dispatch race cannot be observed. Use the rq_worker_thread or "
            "rq_worker_process fixture instead."), stacklevel=2)
    race_point("rq.enqueue", queue=queue.name, job=job.func_name, job_id=job.id, scheduled=None)


def _on_schedule(queue, job, when, *args, **kwargs):
    race_point("rq.enqueue", queue=queue.name, job=job.func_name, job_id=job.id, scheduled=when.isoformat())


def _on_django_rq_call(queue, func, *args, **kwargs):
    deferral = _deferral(queue)
    if deferral is None:
        return
    until, setting = deferral
    job = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    warnings.warn(DeferredEnqueueWarning(
        f"django-rq held back the enqueue of {job} on queue {queue.name!r} until {until} ({setting}): the job cannot "
        "start before the transaction commits, so an enqueue-before-commit race cannot be reproduced here. To "
        "reproduce one, set RQ = {'COMMIT_MODE': 'auto'} for the test (django-rq 4; 'AUTOCOMMIT': True before), "
        "as an app that enqueues directly does."), stacklevel=2)
    race_point("rq.deferred", queue=queue.name, job=job, until=until, setting=setting)


def _deferral(queue):
    """Return ``(until, setting)`` when django-rq will hold this enqueue back, else None."""
    from django.db import connection

    mode = getattr(queue, "_commit_mode", None)
    if mode == "on_db_commit" and connection.in_atomic_block:
        return "the transaction commits", "RQ['COMMIT_MODE'] = 'on_db_commit', django-rq 4's default"
    if mode == "request_finished":
        return "the request ends", "RQ['COMMIT_MODE'] = 'request_finished'"
    if mode is None and getattr(queue, "_autocommit", True) is False:
        return "the request ends", "RQ['AUTOCOMMIT'] = False"
    return None


def _wrap_perform(job_class):
    original = job_class.perform

    @functools.wraps(original)
    def perform(self, *args, **kwargs):
        if race.installed() is None:
            return original(self, *args, **kwargs)
        context = {"job": self.func_name, "job_id": self.id, "args": list(self.args or ())}
        race_point("rq.job.start", **context)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            race_point("rq.job.end", **context, ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
            raise
        race_point("rq.job.end", **context, ok=True, error=None)
        return result

    job_class.perform = perform
