"""The completeness check reads the app's database after a load run and counts each breach, on both databases.

Rows are committed (``transactional_db``) so that the check's own connection sees
them, as it sees the served app's after a run. Each test breaks one rule on top of
the clean project, which passes on its own.
"""
import json

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from racelab.completeness import check_completeness
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def database_url():
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def upload(project, tasks, status=FileUpload.COMPLETED, **fields):
    file_upload = FileUpload.objects.create(project=project, user=project.created_by, status=status,
                                            file=ContentFile(b"x", name="tasks.json"), **fields)
    Task.objects.bulk_create(Task(project=project, file_upload=file_upload, data={"text": f"{file_upload.pk}-{n}"})
                             for n in range(tasks))
    return file_upload


@pytest.fixture
def clean(tmp_path):
    """A project with two completed files (3 and 2 tasks), a 2-page PDF, and what the client sent for them."""
    project = ProjectFactory(created_by=UserFactory())
    first, second = upload(project, 3), upload(project, 2)
    pdf = upload(project, 0, is_parent_document=True, pages_total=2, pages_done=2)
    pages = [upload(project, 1, parent=pdf, page_number=n) for n in (1, 2)]
    sent = [{"project": project.pk, "file_upload_ids": [first.pk, second.pk], "tasks": 5},
            {"project": project.pk, "file_upload_ids": [pdf.pk], "tasks": 2}]
    (tmp_path / "load_racelab.json").write_text(json.dumps({"sent": sent}))
    return project, first, pages


def check(tmp_path, wait_limit_s=5):
    document = check_completeness(database_url(), tmp_path, wait_limit_s=wait_limit_s, poll_s=0.05)
    assert json.loads((tmp_path / "completeness.json").read_text()) == document
    return {key: document.get(key) for key in ("imports_not_final", "wrong_task_counts", "project_total_mismatches",
                                               "duplicate_tasks")}, document


def test_a_clean_run_breaks_no_rule(clean, tmp_path):
    figures, document = check(tmp_path)
    assert figures == dict.fromkeys(figures, 0), document
    assert document["checked"] == {"imports": 0, "files": 5, "tasks": 7, "sent": 2}
    assert document["waited_s"] < 5


def test_a_task_stored_twice_is_a_duplicate(clean, tmp_path):
    project, first, _ = clean
    Task.objects.create(project=project, file_upload=None, data=first.tasks.first().data)
    figures, document = check(tmp_path)
    assert figures["duplicate_tasks"] == 1
    assert f"project {project.pk}: 2 tasks with the data" in document["examples"][0]


def test_a_file_showing_another_count_than_sent_is_a_wrong_count(clean, tmp_path):
    project, first, pages = clean
    first.tasks.first().delete()
    Task.objects.create(project=project, file_upload=pages[0], data={"text": "a third page task"})
    figures, document = check(tmp_path)
    assert figures["wrong_task_counts"] == 2, document  # the files' 4 of 5, the PDF's 3 of 2
    assert f"show 4 tasks, the client sent 5" in " ".join(document["examples"])


def test_an_import_still_running_after_the_wait_is_not_final(clean, tmp_path):
    project, _, _ = clean
    stuck = ProjectImport.objects.create(project=project, status=ProjectImport.IN_PROGRESS)
    figures, document = check(tmp_path, wait_limit_s=0.3)
    assert figures["imports_not_final"] == 1
    assert document["examples"] == [f"import {stuck.pk} still in_progress when the wait ended"]
    assert 0.3 <= document["waited_s"] < 3


def test_tasks_of_a_failed_file_break_the_project_total(clean, tmp_path):
    project, _, _ = clean
    upload(project, 2, status=FileUpload.FAILED)
    figures, document = check(tmp_path)
    assert figures["project_total_mismatches"] == 1 and figures["wrong_task_counts"] == 0
    assert f"project {project.pk} holds 9 tasks, its completed files and JSON imports 7" in document["examples"][0]


def test_a_database_without_the_apps_tables_skips_the_check_and_says_why(tmp_path):
    document = check_completeness(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path, wait_limit_s=1)
    assert "cannot read the app's tables" in document["not_measured"]
