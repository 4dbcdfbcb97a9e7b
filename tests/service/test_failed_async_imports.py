"""Failed async imports on real ``rq worker`` processes: failed rows stay with their message, their bytes go.

A file that fails keeps its FileUpload row (``failed``, a message naming it and
the problem, no SQL) and its import keeps its row; the stored file is deleted.
In an import where only some files fail, the others are imported and the poll
says which is which (the contract is in ``services._finish_import_if_done``).
"""
import pytest
from django.db import connection

from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import json_tasks, named, pdf_bytes
from tests.service.test_async_with_workers import final_import, import_async
from tests.service.test_hostile_input import SQL_OR_TRACE, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = "refuse-me"  # a task whose data holds this is refused by the database itself (the trigger below)


@pytest.fixture
def database_refuses_a_task(transactional_db):
    """Make the database raise on inserting a task whose data holds ``REFUSED``: a real error in a real worker."""
    table = Task._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE FUNCTION racelab_refuse() RETURNS trigger AS $$ BEGIN IF NEW.data::text LIKE "
                           f"'%{REFUSED}%' THEN RAISE EXCEPTION 'INSERT INTO {table} refused by the test trigger'; "
                           "END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
            cursor.execute(f"CREATE TRIGGER racelab_refuse BEFORE INSERT ON {table} FOR EACH ROW "
                           "EXECUTE FUNCTION racelab_refuse()")
        else:
            cursor.execute(f"CREATE TRIGGER racelab_refuse BEFORE INSERT ON {table} WHEN NEW.data LIKE '%{REFUSED}%' "
                           f"BEGIN SELECT RAISE(ABORT, 'INSERT INTO {table} refused by the test trigger'); END")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER racelab_refuse ON {table}" if connection.vendor == "postgresql"
                       else "DROP TRIGGER racelab_refuse")
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION racelab_refuse()")


def listed(api, project):
    return {row["file_name"]: row for row in api.get(f"/api/projects/{project.id}/file-uploads").json()}


def assert_user_facing(message, *fragments):
    assert all(fragment in message for fragment in fragments), message
    assert not [word for word in SQL_OR_TRACE if word in message], message


def test_a_failed_import_keeps_its_failed_rows_with_their_messages_and_deletes_their_files(
        api, project, rq_worker_process, eventually):
    rq_worker_process()
    body = import_async(api, project, named("nan.json", b'[{"v": NaN}]'), named("broken.pdf", b"%PDF-1.4 broken"))

    polled = final_import(api, body, eventually)

    assert (polled["status"], polled["task_count"], polled["failed_files"]) == ("failed", 0, 2)
    rows = listed(api, project)
    assert {name: (row["status"], row["file"]) for name, row in rows.items()} == {
        "nan.json": ("failed", None), "broken.pdf": ("failed", None)}
    assert_user_facing(rows["nan.json"]["error_message"], "'nan.json'", "NaN is not valid JSON")
    assert_user_facing(rows["broken.pdf"]["error_message"], "'broken.pdf'", "the PDF cannot be read")
    assert_user_facing(polled["error"], "'nan.json'", "'broken.pdf'")
    assert [entry["error_message"] for entry in polled["files"]] == [rows["nan.json"]["error_message"],
                                                                    rows["broken.pdf"]["error_message"]]
    assert stored_files() == []
    assert (FileUpload.objects.count(), ProjectImport.objects.count(), Task.objects.count()) == (2, 1, 0)


def test_a_database_error_fails_its_file_with_a_message_not_sql_and_the_other_files_import(
        api, project, database_refuses_a_task, rq_worker_process, eventually):
    rq_worker_process()
    body = import_async(api, project, named("good.json", json_tasks(3)),
                        named("refused.json", f'[{{"text": "{REFUSED}"}}]'), named("after.csv", "text\na\nb\n"))

    polled = final_import(api, body, eventually)

    assert (polled["status"], polled["task_count"], polled["failed_files"]) == ("failed", 5, 1)
    rows = listed(api, project)
    assert {name: row["status"] for name, row in rows.items()} == {
        "good.json": "completed", "refused.json": "failed", "after.csv": "completed"}
    assert_user_facing(rows["refused.json"]["error_message"], "'refused.json'", "the server could not save its tasks",
                       f"import {body['import']}")
    assert "refused by the test trigger" not in rows["refused.json"]["error_message"]
    assert_user_facing(polled["error"], "1 of 3 files failed; the other 2 were imported (5 tasks)", "'refused.json'")
    assert sorted(path.rsplit("-", 1)[-1] for path in stored_files()) == ["after.csv", "good.json"]


def test_49_good_files_and_1_bad_import_the_49_and_say_which_failed(api, project, rq_worker_process, eventually):
    rq_worker_process(count=2)
    files = [named(f"good{n:02}.json", json_tasks(2)) for n in range(49)] + [named("bad.csv", "text,n\nonly one\n")]
    body = import_async(api, project, *files)

    polled = final_import(api, body, eventually, timeout=120)

    assert (polled["status"], polled["task_count"], polled["failed_files"]) == ("failed", 98, 1)
    assert polled["error"].startswith("1 of 50 files failed; the other 49 were imported (98 tasks). Upload only the "
                                      "failed files again:\n'bad.csv': row 2 does not have 2 columns"), polled["error"]
    assert [(entry["file_name"], entry["status"], entry["task_count"]) for entry in polled["files"]] == (
        [(f"good{n:02}.json", "completed", 2) for n in range(49)] + [("bad.csv", "failed", 0)])
    assert [entry["id"] for entry in polled["files"]] == body["file_upload_ids"]
    assert len(stored_files()) == 49 and not [path for path in stored_files() if path.endswith("bad.csv")]
    assert Task.objects.filter(project=project).count() == 98
