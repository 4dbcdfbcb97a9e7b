"""The import flow's queries read as many pages of the tables whatever else the tables hold.

Each test runs an action, pads the tables with other projects' finished files,
runs the action again, and compares the buffer pages its SELECTs touch
(``EXPLAIN (ANALYZE, BUFFERS)``): a query that scans a whole table reads more
pages as the table grows, one served by an index does not. PostgreSQL only:
SQLite has no buffer counts.
"""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from label_studio.data_import.models import FileUpload
from label_studio.data_import.services import reconcile
from label_studio.tasks.models import Task
from tests.conftest import json_tasks, named, pdf_bytes
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_FILES = 5000
SLACK_PAGES = 20  # an index one level deeper costs a page per lookup; a scan of the padding costs hundreds


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("buffer counts are PostgreSQL's; run with --race-db postgres")


def pages_read(action):
    """Run ``action``; return the buffer pages its SELECTs touch, each replayed under EXPLAIN (ANALYZE, BUFFERS)."""
    with CaptureQueriesContext(connection) as captured:
        action()
    selects = [query["sql"] for query in captured.captured_queries if query["sql"].lstrip().upper().startswith("SELECT")]
    total = 0
    with connection.cursor() as cursor:
        for sql in selects:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]["Plan"]
            total += plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    return total


def pad_tables(user):
    """Add ``OTHER_FILES`` finished files with a task each, in another project, and refresh the planner's statistics."""
    other = ProjectFactory(created_by=user)
    uploads = FileUpload.objects.bulk_create(
        FileUpload(project=other, user=user, file=f"other-{n}.json", status=FileUpload.COMPLETED) for n in range(OTHER_FILES))
    Task.objects.bulk_create(Task(project=other, file_upload=upload, data={"n": n}) for n, upload in enumerate(uploads))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def pages_read_before_and_after_padding(action, user):
    before = pages_read(action)
    pad_tables(user)
    after = pages_read(action)
    return before, after


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_import_reads_as_many_pages_with_thousands_of_other_files(api, project, mode):
    def import_a_file_and_a_pdf():
        files = {"file": [named("tasks.json", json_tasks(3)), named("doc.pdf", pdf_bytes(2))]}
        response = api.post(f"/api/projects/{project.id}/import?async={mode == 'async'}", files, format="multipart")
        assert response.status_code == 201, response.content

    before, after = pages_read_before_and_after_padding(import_a_file_and_a_pdf, project.created_by)

    assert after <= before + SLACK_PAGES, (
        f"a {mode} import read {before} pages, then {after} with {OTHER_FILES} more files in the tables: "
        "one of its queries scans a table. Find it with EXPLAIN and give it an index path.")


def test_reading_an_import_back_reads_as_many_pages_with_thousands_of_other_files(api, project):
    files = {"file": [named("tasks.json", json_tasks(3)), named("doc.pdf", pdf_bytes(2))]}
    body = api.post(f"/api/projects/{project.id}/import?async=true", files, format="multipart").json()
    reads = [body["poll_url"], f"/api/projects/{project.id}/file-uploads?ids={body['file_upload_ids']}",
             f"/api/projects/{project.id}"]

    def read_back():
        for path in reads:
            response = api.get(path)
            assert response.status_code == 200, (path, response.content)

    before, after = pages_read_before_and_after_padding(read_back, project.created_by)

    assert after <= before + SLACK_PAGES, (
        f"the poll, the file-upload list and the project read {before} pages, then {after} with {OTHER_FILES} "
        "more files in the tables: one of them scans a table.")


def test_the_reconciler_sweep_reads_as_many_pages_with_thousands_of_finished_files(project):
    before, after = pages_read_before_and_after_padding(reconcile, project.created_by)

    assert after <= before + SLACK_PAGES, (
        f"the reconciler read {before} pages, then {after} with {OTHER_FILES} more finished files: "
        "it scans the finished files instead of looking up the active ones by status.")
