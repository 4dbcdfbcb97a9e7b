"""``Idempotency-Key`` on imports: a retried request gets the first one's import, never a second one."""
import threading

import pytest
from django.db import connection

from racelab.harness.rules import Point

from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ImportRequest, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import json_tasks, named

pytestmark = pytest.mark.django_db(transaction=True)


def post(api, project, key, content=None, mode="false"):
    files = [named("a.json", content or json_tasks(5))]
    return api.post(f"/api/projects/{project.id}/import?async={mode}", {"file": files}, format="multipart",
                    HTTP_IDEMPOTENCY_KEY=key)


def test_a_sync_import_retried_with_its_key_returns_the_same_response_and_imports_once(api, project):
    first, retry = post(api, project, "key-1"), post(api, project, "key-1")

    assert (first.status_code, retry.status_code) == (201, 201), retry.content
    assert retry.json() == first.json()
    assert (FileUpload.objects.count(), Task.objects.count()) == (1, 5)


def test_an_async_import_retried_with_its_key_returns_the_same_import(api, project):
    first, retry = post(api, project, "key-1", mode="true"), post(api, project, "key-1", mode="true")

    assert (first.status_code, retry.status_code) == (201, 201), retry.content
    assert (retry.json()["import"], retry.json()["file_upload_ids"]) == (first.json()["import"], first.json()["file_upload_ids"])
    assert (ProjectImport.objects.count(), FileUpload.objects.count()) == (1, 1)


def test_the_key_with_another_request_is_refused_and_imports_nothing(api, project):
    post(api, project, "key-1")

    other = post(api, project, "key-1", content=json_tasks(6))

    assert other.status_code == 422, other.content
    assert "already used for a different import request" in other.json()["detail"]
    assert (FileUpload.objects.count(), Task.objects.count()) == (1, 5)


def test_keys_are_per_project_and_expire(api, project, settings, user):
    from tests.factories import ProjectFactory

    post(api, project, "key-1")
    assert post(api, ProjectFactory(created_by=user), "key-1").status_code == 201  # another project, another import
    settings.IMPORT_IDEMPOTENCY_KEY_HOURS = 0  # every key is now expired

    assert post(api, project, "key-1").json()["file_upload_ids"] != []
    assert (FileUpload.objects.count(), ImportRequest.objects.count()) == (3, 2)


@pytest.mark.parametrize("mode", ["false", "true"])
def test_two_concurrent_requests_with_one_key_make_one_import(mode, client_for, user, project, sync_points,
                                                               concurrently):
    # Neither claims the key before both have started (past any look-up a check-then-insert would make): the
    # first insert wins, the second waits on its uncommitted row (PostgreSQL) or its lock (SQLite, BEGIN
    # IMMEDIATE) and then meets the unique constraint.
    sync_points.order((Point("import.idempotency_started", times=2), "import.idempotency_key_claimed"))
    clients = {"a": client_for(user), "b": client_for(user)}

    result = concurrently({name: (lambda c=c: post(c, project, "same-key", mode=mode)) for name, c in clients.items()})

    a, b = result.values["a"], result.values["b"]
    assert (a.status_code, b.status_code) == (201, 201), (a.content, b.content)
    assert b.json()["file_upload_ids"] == a.json()["file_upload_ids"]
    assert FileUpload.objects.count() == 1 and ImportRequest.objects.count() == 1
    if mode == "true":
        assert b.json()["import"] == a.json()["import"] and ProjectImport.objects.count() == 1
    else:
        assert b.json() == a.json() and Task.objects.count() == 5
    points = [hit.point for hit in sync_points.trace if hit.point.startswith("import.idempotency")]
    assert points[:3] == ["import.idempotency_started"] * 2 + ["import.idempotency_key_claimed"], points
    assert points.count("import.idempotency_key_claimed") == 1, points


def test_a_sync_import_with_a_key_holds_no_project_row_through_its_insert(api, project, sync_points):
    # Its tasks are inserted, its transaction (import_once's) still open: another import into the project
    # reserves its inner ids now, not after that commit. Reserved inside the transaction, the project's row
    # would stay locked to its end and the reservation below would meet lock_timeout.
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer; the project's row lock is PostgreSQL's "
                    "(run with --race-db postgres)")
    reserved = []

    def reserve_elsewhere():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '3s'")
            reserved.append(list(services._reserve_inner_ids(project.id, 2)))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            reserved.append(exc)
        finally:
            connection.close()

    def while_inserted(context):
        other = threading.Thread(target=reserve_elsewhere)
        other.start()
        other.join(10)

    sync_points.on("import.tasks_created", while_inserted, label="another import reserves ids meanwhile")

    assert post(api, project, "key-1").status_code == 201
    assert len(reserved) == 1 and isinstance(reserved[0], list), (
        f"another import could not reserve inner ids while this one's transaction was open: {reserved}")
    assert not set(reserved[0]) & set(Task.objects.filter(project=project).values_list("inner_id", flat=True))
