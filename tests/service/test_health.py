"""``/api/health/import-flow`` turns unhealthy at once, with the reason and the fix: Redis gone, no live worker, an old import.

The served stack's faults (a worker, every worker, Redis killed) are in ``test_supervision.py``.
"""
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from rest_framework.test import APIClient

from label_studio.data_import.models import ProjectImport

HEALTH = "/api/health/import-flow"
pytestmark = pytest.mark.django_db(transaction=True)


def problem(response, check):
    return next((p for p in response.json()["problems"] if p["check"] == check), None)


@pytest.fixture
def redis_down(settings):
    """Point the app's queues at a port where no Redis listens."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RQ_QUEUES = {name: {"URL": settings.REDIS_URL} for name in settings.RQ_QUEUES}


def register_worker(url, alive):
    """Register an rq worker in Redis: this process (alive), or a process that exits without deregistering (dead)."""
    code = "import sys, redis, rq; rq.Worker(['default'], connection=redis.Redis.from_url(sys.argv[1])).register_birth()"
    if alive:
        import rq

        rq.Worker(["default"], connection=redis.Redis.from_url(url)).register_birth()
    else:
        subprocess.run([sys.executable, "-c", code, url], check=True, timeout=60)


def test_unreachable_redis_is_a_503_that_names_it_not_a_500(redis_down):
    response = APIClient().get(HEALTH)

    assert response.status_code == 503, response.content[:300]
    found = problem(response, "redis")
    assert found and "Redis is unreachable" in found["reason"] and "REDIS_URL" in found["fix"], response.json()
    assert response.json()["checks"]["redis"] == "unreachable"


def test_no_worker_registered_is_unhealthy(use_redis):
    response = APIClient().get(HEALTH)

    assert response.status_code == 503
    assert "No live rq worker (0 registered" in problem(response, "workers")["reason"], response.json()


def test_a_killed_worker_still_registered_in_rq_is_not_live(use_redis):
    register_worker(use_redis, alive=False)  # its key outlives it by worker_ttl + 60 s

    response = APIClient().get(HEALTH)

    assert response.status_code == 503, response.json()
    assert "No live rq worker (1 registered" in problem(response, "workers")["reason"]
    assert "rqworker high default low" in problem(response, "workers")["fix"]


def test_a_live_worker_keeps_it_healthy(use_redis):
    register_worker(use_redis, alive=True)

    response = APIClient().get(HEALTH)

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["live_workers"] == 1


def test_an_import_older_than_the_stuck_threshold_is_unhealthy_even_if_just_touched(project, settings):
    old = ProjectImport.objects.create(project=project, status=ProjectImport.IN_PROGRESS)
    ProjectImport.objects.filter(pk=old.pk).update(  # re-dispatched a moment ago: updated_at is fresh
        created_at=timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER_SECONDS + 1))
    fresh = ProjectImport.objects.create(project=project, status=ProjectImport.IN_PROGRESS)

    response = APIClient().get(HEALTH)

    assert response.status_code == 503
    assert response.json()["metrics"]["stuck_imports"] == 1, fresh
    assert "IMPORT_STUCK_AFTER_SECONDS" in problem(response, "stuck_imports")["reason"]


def test_a_caller_with_a_token_gets_a_503_too_when_redis_is_down(redis_down, settings, api):
    settings.CACHES = {**settings.CACHES, "throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                       "LOCATION": settings.REDIS_URL}}  # as served: counts in Redis

    response = api.get(HEALTH)

    assert response.status_code == 503, response.content[:300]
    assert "cannot reach its Redis" in response.json()["detail"] and response["Retry-After"] == "5"
