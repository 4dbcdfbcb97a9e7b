"""The operations commands: validate_import_flow, import_flow_metrics, reconcile_imports, backfill_file_upload_status."""
import json

import pytest
from django.core.management import call_command

from label_studio.data_import.models import FileUpload
from label_studio.tasks.models import Task
from tests.conftest import csv_rows, named, pdf_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def run(name, *args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_validate_import_flow_passes_with_every_fix_on():
    code, out, _ = run("validate_import_flow")
    assert (code, out.strip()) == (0, "Import flow validation passed.")


def test_validate_import_flow_names_a_fix_that_is_off_and_the_early_dispatch(settings):
    settings.IMPORT_FIXES = {**settings.IMPORT_FIXES, "R2": False}

    code, _, err = run("validate_import_flow")

    assert code == 1
    assert "fix R2 is off" in err and "sent a job before its transaction committed" in err


def test_metrics_count_statuses_and_flag_a_completed_upload_without_tasks(api, project):
    api.post(f"/api/projects/{project.id}/import", {"file": named("a.csv", csv_rows(3))}, format="multipart")
    FileUpload.objects.create(project=project, user=project.created_by, file="ghost.csv", status="completed")

    code, out, _ = run("import_flow_metrics", "--fail-on-problem")

    metrics = json.loads(out)
    assert code == 1
    assert metrics["status_distribution"]["completed"] == 2
    assert metrics["count_mismatches"] == 1 and metrics["task_count_accuracy"] == 0.5


def test_metrics_flag_a_completed_document_short_of_its_pages_tasks_or_pages(api, project):
    for name in ("whole.pdf", "lost_task.pdf", "lost_page.pdf"):
        api.post(f"/api/projects/{project.id}/import", {"file": named(name, pdf_bytes(3))}, format="multipart")
    documents = {fu.original_name: fu for fu in FileUpload.objects.filter(is_parent_document=True)}
    emptied_page = FileUpload.objects.get(parent=documents["lost_task.pdf"], page_number=2)
    Task.objects.filter(file_upload=emptied_page).delete()
    FileUpload.objects.filter(id=documents["lost_page.pdf"].id).update(pages_done=2)

    _, out, _ = run("import_flow_metrics")

    flagged = [emptied_page.id, documents["lost_task.pdf"].id, documents["lost_page.pdf"].id]
    assert json.loads(out)["count_mismatch_ids"] == sorted(flagged)


def test_reconcile_imports_redispatches_a_stuck_import(api, project, settings, use_redis, sync_points):
    sync_points.fail(("job.enqueue", {"job": "label_studio.data_import.services.run_import"}),
                     ConnectionError("Redis went down at the commit"))  # the import's job is lost at enqueue
    body = api.post(f"/api/projects/{project.id}/import?async=true", {"file": named("a.csv", csv_rows(2))},
                    format="multipart").json()
    sync_points.clear()
    settings.REDIS_URL = ""  # back up, and jobs run inline

    code, out, _ = run("reconcile_imports", "--stuck-after", "0")

    assert code == 0 and json.loads(out)["dispatched"] == [body["import"]]
    assert api.get(body["poll_url"]).json()["status"] == "completed"


def test_backfill_command_is_a_no_op_on_tracked_rows(api, project):
    api.post(f"/api/projects/{project.id}/import", {"file": named("a.csv", csv_rows(2))}, format="multipart")

    code, out, _ = run("backfill_file_upload_status", "--batch-size", "10")

    assert code == 0 and json.loads(out) == {"completed": 0, "failed": 0, "batches": 0}
