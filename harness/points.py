"""The built-in race points, and the controller a served process or worker process asks for.

:func:`install` installs Django's points (:mod:`racelab.harness.django_points`: every statement,
commit, rollback and on-commit run) when Django is importable, and RQ's
(:mod:`racelab.harness.rq_points`: enqueue, deferral, dequeue, job start and end) when rq is.
The racelab fixtures call it; an app calls nothing. Once installed they stay for the process;
with no controller they cost one function call each and change nothing.

:func:`install_from_env` adds the controller the environment names (``RACELAB_INJECT``,
``RACELAB_CONTROL_URL``): the factory for a served process, for example a gunicorn ``post_fork``
hook or ``RACE_CONTROLLER=racelab.harness.points.install_from_env`` in the reference app, and
what racelab's worker classes (:mod:`racelab.harness.rqworker`) call at start-up.
"""
from __future__ import annotations

import importlib.util

__all__ = ["install", "install_from_env"]


def install() -> None:
    """Install the built-in points of every framework importable here (Django, RQ); a second call does nothing."""
    if importlib.util.find_spec("django") is not None:
        from racelab.harness import django_points

        django_points.install()
    if importlib.util.find_spec("rq") is not None:
        from racelab.harness import rq_points

        rq_points.install()


def install_from_env():
    """Install the built-in points and the controller the environment asks for; return it, or None.

    ``RACELAB_INJECT`` (e.g. ``commit=200ms,worker=300ms``) is applied in this process;
    ``RACELAB_CONTROL_URL`` and ``RACELAB_CONTROL_NAMESPACE`` make it obey the orderings a test
    sets through Redis (:mod:`racelab.harness.remote`); ``RACELAB_SCHEDULER_URL`` and
    ``RACELAB_SCHEDULER_NAMESPACE`` make its points wait for a test's scheduler
    (:mod:`racelab.harness.remote_scheduler`). With none set, no controller is installed.
    ``RACELAB_COMMIT_LOG`` (a directory) times this process's commits there
    (:mod:`racelab.harness.commit_log`), injected commit delays included.
    """
    from racelab.harness import commit_log, race, remote, remote_scheduler

    install()
    if importlib.util.find_spec("django") is not None:
        commit_log.install_from_env()
    controller = remote.install_from_env()
    guest = remote_scheduler.guest_from_env(controller)
    if guest is not None:
        race.install(guest)
        return guest
    return controller
