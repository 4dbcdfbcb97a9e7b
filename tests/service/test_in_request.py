"""An async import its client waits for (``?wait=N``) runs in its own request, and a request that dies in it is
recovered as a dead worker is (fix R12): its claims are leases of ``IMPORT_WORKER_DEAD_AFTER_SECONDS``."""
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

from label_studio.core.jobs import REQUEST_HOLDER, REQUEST_JOB_PREFIX
from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ProjectImport
from scenarios.common import pdf_bytes
from tests.conftest import csv_rows, named

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_AFTER = 6  # seconds


def post(api, project, query):
    response = api.post(f"/api/projects/{project.id}/import?async=true{query}",
                        {"file": [named("a.csv", csv_rows(3))]}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_an_import_its_client_waits_for_runs_in_its_request_without_a_worker(api, project, use_redis):
    body = post(api, project, "&wait=5")  # no rq worker runs: only the request can have imported it

    assert (body["status"], body["task_count"], body["files"][0]["task_count"]) == ("completed", 3, 3), body
    assert ProjectImport.objects.get(id=body["import"]).job_id.startswith(REQUEST_JOB_PREFIX)
    assert all(len(django_rq.get_queue(name)) == 0 for name in ("high", "default")), "the import was also queued"


def test_without_a_wait_or_over_the_size_it_goes_to_a_worker(api, project, use_redis, settings):
    assert post(api, project, "")["status"] == "created"
    settings.IMPORT_RUN_IN_REQUEST_BYTES = 10
    assert post(api, project, "&wait=1")["status"] == "created"  # its job is queued: no worker takes it
    assert len(django_rq.get_queue("high")) == 2


def died_in_its_import(project, user, claimed_ago):
    """Return an import left as a request killed after claiming it and its file ``claimed_ago`` seconds ago."""
    project_import = services.start_async_import(project, user, [services.Upload("a.csv", csv_rows(3).encode())])
    then = timezone.now() - timedelta(seconds=claimed_ago)
    job_id = f"{REQUEST_JOB_PREFIX}{project_import.id}"
    ProjectImport.objects.filter(id=project_import.id).update(status="in_progress", job_id=job_id, updated_at=then)
    FileUpload.objects.filter(id=project_import.file_upload_ids[0]).update(
        status="processing", claimed_at=then, claim_token="00000000-0000-0000-0000-000000000001",
        claimed_by=f"{REQUEST_HOLDER} {job_id}")
    return project_import


def test_a_request_that_died_in_its_import_leaves_it_to_a_worker_after_a_dead_worker_s_time(
        project, user, use_redis, settings):
    settings.IMPORT_WORKER_DEAD_AFTER_SECONDS = DEAD_AFTER
    died = died_in_its_import(project, user, DEAD_AFTER + 1)
    running = died_in_its_import(project, user, 1)

    done = services.reconcile()  # the stuck timeout (600 s) is not what releases it

    assert done["released"] == died.file_upload_ids and done["imports"] == [died.id], done
    assert ProjectImport.objects.get(id=running.id).status == "in_progress"
    assert FileUpload.objects.get(id=running.file_upload_ids[0]).claimed_by.startswith(REQUEST_HOLDER)


def test_an_import_with_a_pdf_goes_to_workers_even_when_its_client_waits(api, project, use_redis):
    response = api.post(f"/api/projects/{project.id}/import?async=true&wait=1",
                        {"file": [named("a.pdf", pdf_bytes(2))]}, format="multipart")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "created"  # no worker runs: its job waits in Redis
    assert not ProjectImport.objects.get(id=response.json()["import"]).job_id.startswith(REQUEST_JOB_PREFIX)
