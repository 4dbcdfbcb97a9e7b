"""An async import tells its client the truth when its job cannot be queued or has no worker to run it."""
import pytest

from label_studio.core import jobs
from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ProjectImport
from tests.conftest import json_tasks, named

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens there: a Redis that is down


@pytest.fixture
def redis_on(use_redis, settings):
    settings.REDIS_URL = use_redis
    return use_redis


def import_async(api, project, *files):
    return api.post(f"/api/projects/{project.id}/import?async=true", {"file": list(files)}, format="multipart")


def redis_down(settings):
    settings.RQ_QUEUES = {name: {"URL": CLOSED_PORT} for name in settings.RQ_QUEUES}


def test_redis_unreachable_before_the_import_is_a_503_with_retry_after_and_stores_nothing(
        api, project, redis_on, settings):
    settings.IMPORT_RETRY_AFTER_SECONDS = 17
    redis_down(settings)

    response = import_async(api, project, named("a.json", json_tasks(3)))

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "17"
    assert "does not answer" in response.json()["detail"] and "17 seconds" in response.json()["detail"]
    assert (ProjectImport.objects.count(), FileUpload.objects.count()) == (0, 0)
    assert not (settings.MEDIA_ROOT / "upload").exists()


def test_an_enqueue_that_fails_after_the_commit_is_reported_and_dispatched_by_the_reconciler(
        api, project, redis_on, settings, sync_points, rq_worker_threads, eventually):
    good_queues = settings.RQ_QUEUES
    sync_points.on("import.async_before_commit", lambda context: redis_down(settings), label="Redis dies")

    response = import_async(api, project, named("a.json", json_tasks(10)))

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["dispatch"]) == ("created", "waiting_for_dispatch")
    assert body["detail"] == services.WAITING_FOR_DISPATCH
    polled = api.get(body["poll_url"]).json()
    assert (polled["status"], polled["error"]) == ("created", services.WAITING_FOR_DISPATCH)

    assert services.reconcile()["dispatched"] == []  # still down: it keeps waiting
    settings.RQ_QUEUES = good_queues
    rq_worker_threads(1)
    assert services.reconcile()["dispatched"] == [body["import"]]  # not after the stuck timeout (600 s)

    polled = eventually(lambda: (lambda p: p if p["status"] == "completed" else None)(api.get(body["poll_url"]).json()),
                        30, f"import {body['import']} to complete once Redis is back")
    assert (polled["task_count"], polled["error"]) == (10, None)


def test_with_no_live_worker_the_201_says_the_import_waits_for_one(api, project, redis_on):
    response = import_async(api, project, named("a.json", json_tasks(2)))

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["dispatch"]) == ("created", "waiting_for_worker")
    assert "no worker is running" in body["detail"]


def test_with_a_live_worker_process_the_201_says_queued(api, project, redis_on, rq_worker_process, eventually):
    rq_worker_process(count=1)  # a real `rq worker` stays in RQ's registry; a burst-mode thread worker flickers
    eventually(lambda: jobs.live_workers("high"), 30, "the rq worker process to register in RQ's worker registry")

    body = import_async(api, project, named("a.json", json_tasks(2))).json()

    assert (body["status"], body["dispatch"]) == ("created", "queued")
    assert "detail" not in body
