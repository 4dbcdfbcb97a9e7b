"""Django's versions of the core plugin's two internal hooks (imported by :mod:`racelab.harness.plugin`).

The Django + RQ fixtures themselves (``use_redis``, ``rq_worker_thread``,
``rq_worker_process``, ``eventually``) live in :mod:`racelab.harness.django_plugin`,
a plugin of its own because it also starts the run's services.
"""
import pytest

__all__ = ["_racelab_actor_teardown", "_racelab_redis_url"]


@pytest.fixture
def _racelab_actor_teardown():
    """Return the function each actor thread calls as it ends: close its own database connections."""
    from django.db import connections

    return connections.close_all


@pytest.fixture
def _racelab_redis_url(redis_url):
    """Return this run's Redis (started by the plugin) for cross-process control."""
    return redis_url
