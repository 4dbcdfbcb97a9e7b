"""Async imports on real Redis and real ``rq worker`` processes (and a threaded worker for speed)."""
import pytest

from label_studio.core import jobs
from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import json_tasks, named, pdf_bytes

pytestmark = pytest.mark.django_db(transaction=True)

RUN_IMPORT = "label_studio.data_import.services.run_import"


def import_async(api, project, *files):
    response = api.post(f"/api/projects/{project.id}/import?async=true", {"file": list(files)}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def final_import(api, body, eventually, timeout=60):
    return eventually(lambda: (lambda polled: polled if polled["status"] in ("completed", "failed") else None)(
        api.get(body["poll_url"]).json()), timeout, f"import {body['import']} to finish")


def test_1000_task_json_and_50_page_pdf_on_real_worker_processes(api, project, rq_worker_process, eventually):
    rq_worker_process(count=2)
    body = import_async(api, project, named("big.json", json_tasks(1000)), named("doc.pdf", pdf_bytes(50)))

    polled = final_import(api, body, eventually, timeout=120)

    assert (polled["status"], polled["task_count"]) == ("completed", 1050)
    rows = {row["id"]: row for row in api.get(f"/api/projects/{project.id}/file-uploads").json()}
    json_id, pdf_id = body["file_upload_ids"]
    assert (rows[json_id]["task_count"], rows[json_id]["status"]) == (1000, "completed")
    assert (rows[pdf_id]["task_count"], rows[pdf_id]["status"], rows[pdf_id]["is_parent_document"]) == (50, "completed", True)
    assert sorted(row["page_number"] for row in rows.values() if row["parent"] == pdf_id) == list(range(1, 51))
    assert Task.objects.filter(project=project).values("inner_id").distinct().count() == 1050


def test_a_doubled_job_creates_nothing_twice(api, project, rq_worker_thread, eventually):
    body = import_async(api, project, named("a.json", json_tasks(30)))
    doubled = services.start_job_async_or_sync(services.run_import, body["import"], queue_name="high")

    final_import(api, body, eventually)
    eventually(lambda: jobs.queue("high").fetch_job(doubled).is_finished, 30, "the doubled job to finish")

    assert Task.objects.filter(project=project).count() == 30


def test_a_job_lost_at_enqueue_is_recovered_by_the_reconciler(api, project, sync_points, rq_worker_thread, eventually):
    sync_points.fail(("job.enqueue", {"job": RUN_IMPORT}), ConnectionError("Redis went down at the commit"))
    body = import_async(api, project, named("a.json", json_tasks(10)))
    assert ProjectImport.objects.get(id=body["import"]).status == "created"
    sync_points.clear()

    done = services.reconcile(stuck_after=0)

    assert (done["dispatched"], done["imports"]) == ([body["import"]], [])  # sent again once, not twice
    assert final_import(api, body, eventually)["task_count"] == 10
    assert FileUpload.objects.get(id=body["file_upload_ids"][0]).status == "completed"


def test_a_page_that_cannot_be_read_fails_alone_and_fails_its_parent(api, project, use_redis):
    body = import_async(api, project, named("doc.pdf", pdf_bytes(3)))
    services.run_import(body["import"])  # the fan-out; its page jobs wait in Redis
    pages = list(FileUpload.objects.filter(parent_id=body["file_upload_ids"][0]).order_by("page_number"))
    with pages[1].file.open("wb") as handle:
        handle.write(b"not a pdf")

    services.process_pdf_pages([page.id for page in pages])

    assert [FileUpload.objects.get(id=page.id).status for page in pages] == ["completed", "failed", "completed"]
    parent = FileUpload.objects.get(id=body["file_upload_ids"][0])
    assert (parent.status, parent.pages_done) == ("failed", 3) and "page(s) 2 failed" in parent.error_message
    assert Task.objects.filter(project=project).count() == 2
    assert api.get(body["poll_url"]).json()["status"] == "failed"


def test_a_big_import_waits_on_the_default_queue_not_before_small_ones(api, project, settings, use_redis):
    settings.IMPORT_SMALL_BYTES = 1000
    small = import_async(api, project, named("small.json", json_tasks(2)))
    big = import_async(api, project, named("big.json", json_tasks(100)))  # no worker: both jobs stay queued

    def job_id(body):
        return ProjectImport.objects.get(id=body["import"]).job_id

    assert (jobs.queue("high").job_ids, jobs.queue("default").job_ids) == ([job_id(small)], [job_id(big)])


def test_a_rerun_after_the_fan_out_never_splits_a_pdf_twice(api, project, use_redis):
    body = import_async(api, project, named("doc.pdf", pdf_bytes(3)))  # jobs wait in Redis: no worker
    services.run_import(body["import"])  # the fan-out, as a worker that then dies would leave it
    parent = FileUpload.objects.get(id=body["file_upload_ids"][0])

    recovered = services.reconcile(stuck_after=0)
    services.run_import(body["import"])  # the re-dispatched run

    assert recovered["imports"] == [body["import"]] and parent.id not in recovered["released"]
    pages = list(FileUpload.objects.filter(parent=parent).order_by("page_number"))
    assert [page.page_number for page in pages] == [1, 2, 3]
    services.process_pdf_pages([page.id for page in pages])
    assert api.get(body["poll_url"]).json()["status"] == "completed"
    assert FileUpload.objects.get(id=parent.id).status == "completed"
    assert Task.objects.filter(project=project).count() == 3
