"""Real ``rq worker`` processes that obey a test: racelab's worker classes, and the entry that starts one.

:class:`Worker` and :class:`SimpleWorker` are RQ's own classes that, as they start, install the
built-in race points and the controller the environment names (``RACELAB_INJECT``,
``RACELAB_CONTROL_URL``; see :func:`racelab.harness.points.install_from_env`). No change to the
app is needed; a staging server's workers take them with
``python manage.py rqworker --worker-class racelab.harness.rqworker.Worker`` (or ``rq worker -w``).

``RQ_REDIS_URL=… python -m racelab.harness.rqworker QUEUE...`` is what the ``rq_worker_process``
fixture starts (the URL in the environment, like ``rq worker``'s: it may carry a password, and
any local user can read a command line). It applies the test's settings overlay (:mod:`racelab.harness.overlay`: the test
database, its Redis, the settings the test changed) before ``django.setup()``, then runs one of
those worker classes on the queues until SIGTERM, as ``rqworker`` would.
"""
from __future__ import annotations

import argparse
import logging
import os

import rq
from rq import Queue
from redis import Redis

from racelab.harness import points

__all__ = ["Worker", "SimpleWorker", "main"]


class _ObeysTheTest:
    """Install the built-in points and the environment's controller when the worker is made."""

    def __init__(self, *args, **kwargs):
        points.install_from_env()
        super().__init__(*args, **kwargs)


class Worker(_ObeysTheTest, rq.Worker):
    """RQ's forking ``Worker`` (a work horse per job), obeying ``RACELAB_INJECT`` and remote sync points."""


class SimpleWorker(_ObeysTheTest, rq.SimpleWorker):
    """RQ's ``SimpleWorker`` (jobs in the worker's own process), obeying ``RACELAB_INJECT`` and remote sync points."""


WORKER_CLASSES = {"fork": Worker, "simple": SimpleWorker}
URL_ENV = "RQ_REDIS_URL"  # the variable rq's own command line reads too


def main(argv=None) -> int:
    """Run a racelab worker on the given queues until SIGTERM; return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m racelab.harness.rqworker", description=__doc__.splitlines()[0])
    parser.add_argument("queues", nargs="+", help="The queues to work on, highest priority first.")
    parser.add_argument("--url", default=os.environ.get(URL_ENV),
                        help=f"The Redis the queues live in (default ${URL_ENV}, which keeps a password off the command line).")
    parser.add_argument("--worker-class", choices=WORKER_CLASSES, default="fork",
                        help="fork: a work horse per job, as in production (default); simple: jobs in this process.")
    parser.add_argument("--name", default=None, help="The worker's name in RQ and in the trace.")
    parser.add_argument("--with-scheduler", action="store_true", help="Also move due enqueue_in/enqueue_at jobs.")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error(f"no Redis: set {URL_ENV}=redis://… (or pass --url).")
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        _setup_django()
    connection = Redis.from_url(args.url)
    worker = WORKER_CLASSES[args.worker_class]([Queue(name, connection=connection) for name in args.queues],
                                               connection=connection, name=args.name)
    worker.work(with_scheduler=args.with_scheduler, logging_level=logging.WARNING)
    return 0


def _setup_django():
    import django
    from django.db import connections

    from racelab.harness import overlay

    overlay.apply_from_env()
    django.setup()
    connections.close_all()  # a work horse opens its own; none may be shared across the fork


if __name__ == "__main__":
    raise SystemExit(main())
