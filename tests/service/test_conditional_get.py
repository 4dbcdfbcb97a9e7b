"""Conditional polls: the import status and the file-upload list answer ``If-None-Match`` with a 304.

Each test holds an ETag, lets a worker change what the response shows, and
asks again with the old ETag: a stale 304 there would hide the change from a
client forever. The job runs in the test's thread (jobs wait for a commit
that the ``db`` fixture never makes), which is what a worker process does to the rows.
"""
import pytest
from django.db.models import F

from label_studio.data_import import api as api_module
from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import csv_rows, named
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def start_import(api, project, *files):
    response = api.post(f"/api/projects/{project.id}/import?async=true", {"file": list(files)}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def revalidate(api, path, etag):
    """GET ``path`` with ``If-None-Match: etag``; return the response."""
    return api.get(path, HTTP_IF_NONE_MATCH=etag)


def file_uploads_path(project, body):
    return f"/api/projects/{project.id}/file-uploads?ids=[{','.join(map(str, body['file_upload_ids']))}]"


def test_an_unchanged_import_answers_304_without_a_body(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    first = api.get(body["poll_url"])
    assert first.status_code == 200 and first["ETag"]

    again = revalidate(api, body["poll_url"], first["ETag"])

    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == first["ETag"]


def test_a_304_builds_no_response(api, project, monkeypatch):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    etags = [api.get(body["poll_url"])["ETag"], api.get(file_uploads_path(project, body))["ETag"]]

    def refuse(*args, **kwargs):
        raise AssertionError("a 304 serialized the response")

    monkeypatch.setattr(api_module, "ProjectImportSerializer", refuse)
    monkeypatch.setattr(api_module, "FileUploadSerializer", refuse)

    assert revalidate(api, body["poll_url"], etags[0]).status_code == 304
    assert revalidate(api, file_uploads_path(project, body), etags[1]).status_code == 304


def test_tasks_committed_by_the_worker_after_the_first_poll_end_the_304s(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    before = api.get(body["poll_url"])
    listing = api.get(file_uploads_path(project, body))
    assert before.json()["status"] == "created" and listing.json()[0]["status"] == "pending"

    services.run_import(body["import"])

    after = revalidate(api, body["poll_url"], before["ETag"])
    assert after.status_code == 200
    assert (after.json()["status"], after.json()["task_count"]) == ("completed", 3)
    assert after["ETag"] != before["ETag"]
    rows = revalidate(api, file_uploads_path(project, body), listing["ETag"])
    assert rows.status_code == 200
    assert (rows.json()[0]["status"], rows.json()[0]["task_count"]) == ("completed", 3)
    assert revalidate(api, file_uploads_path(project, body), rows["ETag"]).status_code == 304


def test_a_counter_moved_without_a_status_change_ends_the_304s(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    before = api.get(body["poll_url"])

    ProjectImport.objects.filter(id=body["import"]).update(task_count=F("task_count") + 500)  # updated_at unmoved

    after = revalidate(api, body["poll_url"], before["ETag"])
    assert after.status_code == 200 and after.json()["task_count"] == 500


def test_a_file_gaining_tasks_while_processing_ends_the_304s(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    listing = api.get(file_uploads_path(project, body))
    file_upload = FileUpload.objects.get(id=body["file_upload_ids"][0])

    Task.objects.create(project=project, file_upload=file_upload, data={"text": "a batch committed"}, inner_id=1)

    rows = revalidate(api, file_uploads_path(project, body), listing["ETag"])
    assert rows.status_code == 200 and rows.json()[0]["task_count"] == 1


def test_a_failed_file_ends_the_304s(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    listing = api.get(f"/api/projects/{project.id}/file-uploads")

    FileUpload.objects.filter(id=body["file_upload_ids"][0]).update(status="failed", error_message="a.csv: broken.")

    rows = revalidate(api, f"/api/projects/{project.id}/file-uploads", listing["ETag"])
    assert rows.status_code == 200
    assert (rows.json()[0]["status"], rows.json()[0]["error_message"]) == ("failed", "a.csv: broken.")


def test_a_file_of_the_import_failing_ends_the_import_status_304s(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)), named("b.csv", csv_rows(2)))
    before = api.get(body["poll_url"])

    FileUpload.objects.filter(id=body["file_upload_ids"][0]).update(status="failed", error_message="a.csv: broken.")

    after = revalidate(api, body["poll_url"], before["ETag"])
    assert after.status_code == 200
    assert (after.json()["failed_files"], after.json()["files"][0]["error_message"]) == (1, "a.csv: broken.")


def test_a_new_file_in_the_project_ends_the_304s(api, project):
    start_import(api, project, named("a.csv", csv_rows(3)))
    listing = api.get(f"/api/projects/{project.id}/file-uploads")

    start_import(api, project, named("b.csv", csv_rows(2)))

    rows = revalidate(api, f"/api/projects/{project.id}/file-uploads", listing["ETag"])
    assert rows.status_code == 200 and [row["file_name"] for row in rows.json()] == ["a.csv", "b.csv"]


def test_a_client_without_if_none_match_gets_the_full_answer_every_time(api, project):
    body = start_import(api, project, named("a.csv", csv_rows(3)))

    polls = [api.get(body["poll_url"]) for _ in range(2)] + [api.get(file_uploads_path(project, body))] * 2

    assert [poll.status_code for poll in polls] == [200] * 4
    assert polls[0].json() == polls[1].json() and polls[2].json()[0]["file_name"] == "a.csv"


def test_someone_elses_import_is_404_even_with_its_etag(api, project, client_for):
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    etag = api.get(body["poll_url"])["ETag"]
    stranger = client_for(UserFactory())

    assert revalidate(stranger, body["poll_url"], etag).status_code == 404
    assert revalidate(stranger, file_uploads_path(project, body), '"anything"').status_code == 404


def test_a_bad_ids_list_is_still_400_with_an_etag_sent(api, project):
    response = revalidate(api, f"/api/projects/{project.id}/file-uploads?ids=[a]", '"anything"')

    assert response.status_code == 400 and "use ids=[1,2,3]" in response.json()["detail"]


@pytest.mark.parametrize("r6", [True, False], ids=["R6 on", "R6 off"])
def test_a_final_status_counts_its_files_as_the_list_does(api, project, settings, r6):
    """A client may take the final status's ``files`` for the list (``racelab bench`` does): with R6 off
    too, where a list read before the tasks committed caches 0, the status shows that 0, not the truth."""
    settings.IMPORT_FIXES = {**settings.IMPORT_FIXES, "R6": r6}
    body = start_import(api, project, named("a.csv", csv_rows(3)))
    api.get(file_uploads_path(project, body))  # read while the import waits for its job

    services.run_import(body["import"])

    polled, listed = api.get(body["poll_url"]).json(), api.get(file_uploads_path(project, body)).json()
    assert [entry["task_count"] for entry in polled["files"]] == [row["task_count"] for row in listed] == [
        3 if r6 else 0], (polled["files"], listed)
