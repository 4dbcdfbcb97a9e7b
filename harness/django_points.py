"""Built-in race points for any Django + RQ app: commit, on-commit callbacks, enqueue, dequeue, job start and end.

:func:`install` wraps Django's and RQ's own methods once per process so that they
call ``race_point``; with no controller installed the wrappers cost one
function call and change nothing. The points:

- ``db.commit`` (alias) — just before a transaction's COMMIT reaches the database;
- ``db.on_commit`` (alias) — after COMMIT, before the on-commit callbacks run;
- ``rq.enqueue`` (queue, job, job_id) — just before RQ pushes a job to Redis;
- ``rq.dequeue`` (queue, job, job_id) — when a worker has taken a job, before it runs it.
"""
import functools

from racelab import race_point

_installed = False


def install():
    """Wrap the framework methods with race points; a second call does nothing."""
    global _installed
    if _installed:
        return
    from django.db.backends.base.base import BaseDatabaseWrapper
    from rq.queue import Queue
    from rq.worker import Worker

    _wrap(BaseDatabaseWrapper, "commit", lambda self, *a, **k: race_point("db.commit", alias=self.alias))
    _wrap(BaseDatabaseWrapper, "run_and_clear_commit_hooks",
          lambda self, *a, **k: race_point("db.on_commit", alias=self.alias))
    _wrap(Queue, "enqueue_job",
          lambda self, job, *a, **k: race_point("rq.enqueue", queue=self.name, job=job.func_name, job_id=job.id))
    _wrap(Worker, "perform_job",
          lambda self, job, queue, *a, **k: race_point("rq.dequeue", queue=queue.name, job=job.func_name, job_id=job.id))
    _installed = True


def _wrap(cls, name, before):
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        before(self, *args, **kwargs)
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


def install_from_env():
    """Install the built-in points and the controller the environment asks for; the ``RACE_CONTROLLER`` factory.

    A served process or an ``rq worker`` started with
    ``RACE_CONTROLLER=racelab.harness.django_points.install_from_env`` honours
    ``RACELAB_INJECT`` (e.g. ``commit=200ms,worker=300ms``) and, with
    ``RACELAB_CONTROL_URL``, the orderings a test sets through Redis.
    """
    from racelab.harness import remote

    install()
    return remote.install_from_env()
