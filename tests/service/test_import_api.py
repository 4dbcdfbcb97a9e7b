"""The import API end to end in one process: every format, both modes, upstream's keys."""
import json

import pytest
from django.db.models import Q

from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import csv_rows, json_tasks, named, pdf_bytes

SYNC_KEYS = {"task_count", "annotation_count", "prediction_count", "duration", "file_upload_ids",
             "could_be_tasks_list", "found_formats", "data_columns"}

pytestmark = pytest.mark.django_db


def upload(api, project, *files, mode="false"):
    return api.post(f"/api/projects/{project.id}/import?async={mode}", {"file": list(files)}, format="multipart")


def listing(api, project):
    response = api.get(f"/api/projects/{project.id}/file-uploads")
    assert response.status_code == 200, response.content
    return {row["id"]: row for row in response.json()}


@pytest.mark.parametrize("name, content, expected", [
    ("tasks.json", json_tasks(1000), 1000),
    ("tasks.csv", csv_rows(1000), 1000),
    ("tasks.tsv", csv_rows(20, "\t"), 20),
    ("tasks.jsonl", "\n".join(json.dumps({"text": f"t{i}"}) for i in range(7)), 7),
    ("tasks.txt", "one\ntwo\n\nthree\n", 3),
    ("single.json", json.dumps({"data": {"text": "only"}}), 1),
])
def test_sync_import_of_each_format_is_visible_at_once(api, project, name, content, expected):
    response = upload(api, project, named(name, content))

    assert response.status_code == 201, response.content
    body = response.json()
    assert SYNC_KEYS <= set(body)
    assert body["task_count"] == expected
    [file_upload_id] = body["file_upload_ids"]
    row = listing(api, project)[file_upload_id]
    assert (row["task_count"], row["status"], row["file_name"]) == (expected, "completed", name)
    assert row["tasks_created_at"] is not None
    assert Task.objects.filter(file_upload_id=file_upload_id).count() == expected


def test_json_body_import_with_trailing_slash(api, project):
    tasks = [{"data": {"text": "a"}, "annotations": [{"result": []}]}, {"text": "b"}]
    response = api.post(f"/api/projects/{project.id}/import/", tasks, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["task_count"] == 2
    assert response.json()["annotation_count"] == 1
    assert api.get(f"/api/projects/{project.id}/").json()["task_number"] == 2


def test_pdf_import_creates_a_completed_parent_and_a_task_per_page(api, project):
    response = upload(api, project, named("doc.pdf", pdf_bytes(50)))

    assert response.status_code == 201, response.content
    assert response.json()["task_count"] == 50
    rows = listing(api, project)
    [parent] = [row for row in rows.values() if row["is_parent_document"]]
    pages = [row for row in rows.values() if row["parent"] == parent["id"]]
    assert (parent["status"], parent["task_count"], len(pages)) == ("completed", 50, 50)
    assert all(page["status"] == "completed" and page["task_count"] == 1 for page in pages)
    assert "Page 7 of the document" in Task.objects.get(file_upload_id=pages[6]["id"]).data["text"]


@pytest.mark.django_db(transaction=True)
def test_async_import_without_redis_runs_after_commit_and_says_what_to_poll(api, project):
    response = upload(api, project, named("a.csv", csv_rows(5)), named("b.pdf", pdf_bytes(3)), mode="true")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"import", "status", "file_upload_ids", "poll_url"}
    polled = api.get(body["poll_url"]).json()
    assert (polled["status"], polled["task_count"]) == ("completed", 8)
    rows = listing(api, project)
    assert all(row["status"] == "completed" for row in rows.values())
    assert sum(rows[i]["task_count"] for i in body["file_upload_ids"]) == 8


@pytest.mark.django_db(transaction=True)
def test_async_import_of_unparsable_content_ends_failed_with_its_error(api, project):
    response = upload(api, project, named("broken.json", "{not json"), mode="true")

    assert response.status_code == 201
    polled = api.get(response.json()["poll_url"]).json()
    assert polled["status"] == "failed"
    assert "'broken.json': invalid JSON" in polled["error"]
    [row] = listing(api, project).values()
    assert (row["status"], row["task_count"]) == ("failed", 0)
    assert "invalid JSON" in row["error_message"]
    assert Task.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_async_mode_default_comes_from_settings(api, project, settings):
    settings.IMPORT_ASYNC_DEFAULT = True
    response = api.post(f"/api/projects/{project.id}/import", [{"text": "x"}], format="json")

    assert "import" in response.json()
    assert ProjectImport.objects.get().status == "completed"


def test_return_task_ids_lists_the_new_tasks_like_upstream(api, project):
    api.post(f"/api/projects/{project.id}/import", [{"text": "earlier"}], format="json")
    plain = upload(api, project, named("a.csv", csv_rows(2))).json()
    body = api.post(f"/api/projects/{project.id}/import?return_task_ids=true",
                    {"file": [named("b.csv", csv_rows(3)), named("c.pdf", pdf_bytes(2))]}, format="multipart").json()

    assert "task_ids" not in plain
    new = Task.objects.filter(Q(file_upload_id__in=body["file_upload_ids"])
                              | Q(file_upload__parent_id__in=body["file_upload_ids"]))
    assert sorted(body["task_ids"]) == sorted(new.values_list("id", flat=True)) and body["task_count"] == 5


@pytest.mark.parametrize("flag", ["async", "return_task_ids"])
def test_a_bad_yes_or_no_is_a_400_naming_the_values(api, project, flag):
    response = api.post(f"/api/projects/{project.id}/import?{flag}=maybe", [{"text": "x"}], format="json")

    assert response.status_code == 400
    assert f"{flag}=true or {flag}=false" in response.json()["detail"]
    assert Task.objects.count() == 0


def test_task_lists_are_paginated_like_upstream(api, project):
    upload(api, project, named("t.csv", csv_rows(250)))

    page = api.get(f"/api/projects/{project.id}/tasks?page=2&page_size=100").json()
    assert [task["inner_id"] for task in page][:2] == [101, 102] and len(page) == 100
    listed = api.get(f"/api/tasks?project={project.id}&page_size=10").json()
    assert listed["total"] == 250 and len(listed["tasks"]) == 10


def test_a_user_sees_and_imports_into_only_their_own_projects(api, client_for, project):
    from tests.factories import ProjectFactory, UserFactory

    import_id = api.post(f"/api/projects/{project.id}/import?async=true", [{"text": "x"}], format="json").json()["import"]
    other_project = ProjectFactory(created_by=project.created_by)
    assert api.get(f"/api/projects/{project.id}/imports/{import_id}").status_code == 200
    assert api.get(f"/api/projects/{other_project.id}/imports/{import_id}").status_code == 404
    stranger = client_for(UserFactory())
    assert stranger.get(f"/api/projects/{project.id}/imports/{import_id}").status_code == 404
    assert stranger.get(f"/api/projects/{project.id}").status_code == 404
    assert stranger.get(f"/api/projects/{project.id}/file-uploads").status_code == 404
    assert stranger.post(f"/api/projects/{project.id}/import", [{"text": "x"}], format="json").status_code == 404
    assert stranger.get("/api/projects").json()["count"] == 0
    assert Task.objects.count() == 0


def test_requests_without_a_token_are_refused(project):
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/projects/{project.id}").status_code == 401


def test_project_create_and_health(api):
    created = api.post("/api/projects", {"title": "Mine"}, format="json")
    assert created.status_code == 201 and created.json()["task_number"] == 0

    health = api.get("/api/health/import-flow")
    assert health.status_code == 200
    assert health.json()["checks"]["task_count_accuracy"] == "pass"


@pytest.mark.django_db(transaction=True)
def test_async_import_reports_upstreams_counts_and_columns(api, project):
    tasks = [{"data": {"text": "a", "score": 1}, "annotations": [{"result": []}], "predictions": [{}, {}]}]
    body = api.post(f"/api/projects/{project.id}/import?async=true", tasks, format="json").json()
    mixed = upload(api, project, named("t.csv", "text,n\nx,1\n"), mode="true").json()

    polled = api.get(body["poll_url"]).json()
    assert (polled["task_count"], polled["annotation_count"], polled["prediction_count"]) == (1, 1, 2)
    assert polled["data_columns"] == ["score", "text"]
    polled = api.get(mixed["poll_url"]).json()
    assert (polled["found_formats"], polled["could_be_tasks_list"], polled["data_columns"]) == ({".csv": 1}, True, ["n", "text"])
