"""A poll that waits (``?wait=N``): answered as soon as its import is final, woken by the commit that ends it."""
import threading

import pytest
from django.db import connections

from label_studio.data_import.models import FileUpload, ProjectImport
from tests.conftest import csv_rows, named

pytestmark = pytest.mark.django_db(transaction=True)


def start_import(api, project):
    response = api.post(f"/api/projects/{project.id}/import?async=true", {"file": [named("a.csv", csv_rows(3))]},
                        format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_waiting_poll_is_answered_by_the_commit_that_ends_its_import(api, project, settings, remote_sync_points,
                                                                       rq_worker_process):
    settings.IMPORT_POLL_WAIT_MAX_SECONDS = 60  # a poll woken only by its wait's end would answer "created"
    remote_sync_points.order(("import.poll_waiting", "rq.job.start"))  # the job runs while the poll waits
    rq_worker_process(1)
    body = start_import(api, project)
    assert body["poll_wait"] == 60
    answer = {}

    def poll():
        try:
            answer.update(api.get(body["poll_url"], {"wait": "60"}).json())
        finally:
            connections.close_all()
    poller = threading.Thread(target=poll)
    poller.start()
    poller.join(90)

    assert remote_sync_points.passed("import.poll_waiting") == 1
    assert (answer.get("status"), answer.get("task_count")) == ("completed", 3), answer


def test_a_wait_that_is_not_a_number_of_seconds_is_a_400_that_says_so(api, project, use_redis):
    body = start_import(api, project)

    for wait in ("soon", "-1", "inf"):
        response = api.get(body["poll_url"], {"wait": wait})
        assert response.status_code == 400
        assert response.json()["detail"] == f"wait={wait!r} is not a number of seconds; use wait=5 (at most 5)."


def test_a_waiting_poll_of_a_final_import_answers_at_once(api, project, remote_sync_points):
    body = start_import(api, project)  # no Redis for the app: the import ran inline, and is final

    assert "poll_wait" not in body
    assert api.get(body["poll_url"], {"wait": "5"}).json()["status"] == "completed"
    assert remote_sync_points.passed("import.poll_waiting") == 0


def test_an_import_that_waits_is_answered_final_by_its_jobs_commit(api, project, settings, remote_sync_points,
                                                                    rq_worker_process):
    settings.IMPORT_POLL_WAIT_MAX_SECONDS = 60  # a 201 woken only by its wait's end would say "created"
    settings.IMPORT_RUN_IN_REQUEST_BYTES = 0  # to a worker: one it waits for would otherwise run in the request
    remote_sync_points.order(("import.poll_waiting", "rq.job.start"))  # the job runs while the request waits
    rq_worker_process(1)

    response = api.post(f"/api/projects/{project.id}/import?async=true&wait=60",
                        {"file": [named("a.csv", csv_rows(3))]}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert remote_sync_points.passed("import.poll_waiting") == 1
    assert (body["status"], body["task_count"], body["files"][0]["task_count"]) == ("completed", 3, 3), body
    assert body["poll_url"] == f"/api/projects/{project.id}/imports/{body['import']}"


def test_an_import_with_a_wait_that_is_not_a_number_is_a_400_that_stores_nothing(api, project, use_redis):
    response = api.post(f"/api/projects/{project.id}/import?async=true&wait=soon",
                        {"file": [named("a.csv", csv_rows(3))]}, format="multipart")

    assert response.status_code == 400
    assert response.json()["detail"] == "wait='soon' is not a number of seconds; use wait=5 (at most 5)."
    assert not ProjectImport.objects.exists() and not FileUpload.objects.exists()
