"""The tasks' bulk write path (:func:`label_studio.tasks.bulk.insert_tasks`): COPY on PostgreSQL, executemany on SQLite.

It must store what ``bulk_create`` stores, value for value, return the ids of
its rows in order, commit nothing of its own, and be seen by the execute
wrappers (query logs, race points) like any other statement.
"""
import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from label_studio.tasks.bulk import COLUMNS, insert_tasks
from label_studio.tasks.models import Task

pytestmark = pytest.mark.django_db(transaction=True)

TRICKY = [
    {"text": "plain"},
    {"text": "ünïcödé — 日本語 — emoji 🙂 — rtl עברית", "ключ": "значение"},
    {"nested": {"list": [1, [2, [3, {"deep": None}]]], "empty": {}, "also": []}},
    {"quotes": 'single \' double " backtick `', "json": '{"not": "parsed"}'},
    {"backslashes": "a\\b\\\\c \\N \\. \\t", "windows": "C:\\Users\\x"},
    {"whitespace": "tab\there\nnewline\r\ncrlf\x0bvt\x0cff", "trailing": "  "},
    {"numbers": [0, -1, 2**53 + 1, 10**30, -(10**40), 1.5, 1e-300, 1.7976931348623157e308, -0.0]},
    {"at 64 bits": [2**63 - 1, -(2**63), 2**64 - 1], "exponent": 1e22, "tiny": 5e-324},
    {"bools": [True, False, None], "zero": 0, "empty": ""},
    {"copy terminator": "\\.\n", "null text": "\\N", "pipe|comma,semicolon;": "x"},
    {"controls": "".join(chr(c) for c in range(1, 32))},
]


def rows_for(project, datas, start=1):
    return [{"project_id": project.id, "file_upload_id": None, "data": data, "meta": {"predictions": [data]},
             "inner_id": start + n} for n, data in enumerate(datas)]


def stored(ids):
    """Return each task's data and meta as the database holds them (text) and as Django reads them back."""
    with connection.cursor() as cursor:
        cast = "::text" if connection.vendor == "postgresql" else ""
        cursor.execute(f"SELECT id, data{cast}, meta{cast}, inner_id FROM tasks_task WHERE id IN "
                       f"({', '.join(['%s'] * len(ids))}) ORDER BY id", list(ids))
        raw = [row[1:] for row in cursor.fetchall()]
    read = list(Task.objects.filter(id__in=ids).order_by("id").values_list("data", "meta", "inner_id"))
    return raw, read


def test_it_stores_what_bulk_create_stores_for_tricky_values(project):
    with transaction.atomic():
        old = Task.objects.bulk_create(Task(**row) for row in rows_for(project, TRICKY))
        new_ids = insert_tasks(rows_for(project, TRICKY))

    old_raw, old_read = stored([task.id for task in old])
    new_raw, new_read = stored(new_ids)
    assert new_raw == old_raw, "the database holds other JSON text than bulk_create wrote"
    assert new_read == old_read
    # jsonb keeps numbers as numerics (1.79e308 reads back as an int, -0.0 as 0.0) whichever path wrote them.
    exact = [data for data in TRICKY if "numbers" not in data]
    assert [data for data, _, _ in new_read if "numbers" not in data] == exact


def test_it_returns_the_ids_of_its_rows_in_order(project):
    datas = [{"n": n} for n in range(50)]
    with transaction.atomic():
        ids = insert_tasks(rows_for(project, datas))

    assert ids == sorted(ids) and len(set(ids)) == 50
    assert [Task.objects.get(id=task_id).data for task_id in ids] == datas
    assert Task.objects.get(id=ids[0]).created_at is not None


def test_ids_never_repeat_an_earlier_task_s_even_a_deleted_one(project):
    with transaction.atomic():
        first = insert_tasks(rows_for(project, [{"n": 1}, {"n": 2}]))
    Task.objects.filter(id=first[-1]).delete()
    with transaction.atomic():
        bulk = Task.objects.bulk_create([Task(**rows_for(project, [{"n": 3}])[0])])
        second = insert_tasks(rows_for(project, [{"n": 4}]))

    assert second[0] > bulk[0].id > first[-1], "an id was handed out twice"


def test_a_rollback_leaves_none_of_its_rows(project):
    with pytest.raises(RuntimeError), transaction.atomic():
        insert_tasks(rows_for(project, [{"n": n} for n in range(10)]))
        raise RuntimeError("the unit of work failed")

    assert Task.objects.count() == 0


def test_outside_a_transaction_it_refuses_and_writes_nothing(project):
    with pytest.raises(TransactionManagementError, match="inside transaction.atomic"):
        insert_tasks(rows_for(project, [{"n": 1}]))
    assert Task.objects.count() == 0


def test_no_rows_run_no_query(project, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert insert_tasks([]) == []


def test_the_rows_name_every_column_of_a_task():
    filled_in_by_insert_tasks = {"id", "created_at"}
    assert {field.attname for field in Task._meta.concrete_fields} == set(COLUMNS) | filled_in_by_insert_tasks


def test_the_insert_passes_the_execute_wrappers_and_the_race_points(project, sync_points):
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(sql.split(None, 1)[0].upper())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy), transaction.atomic():
        insert_tasks(rows_for(project, [{"n": 1}, {"n": 2}]))

    verb = "COPY" if connection.vendor == "postgresql" else "INSERT"
    assert verb in seen, f"the {verb} did not pass connection.execute_wrapper: {seen}"
    writes = [h for h in sync_points.trace if h.point == "db.execute" and h.context.get("table") == "tasks_task"]
    assert [h.context["verb"] for h in writes] == [verb]
    commits = [h for h in sync_points.trace if h.point == "db.commit" and "tasks_task" in h.context.get("tables", ())]
    assert commits, "the transaction's db.commit does not name tasks_task, so the explorer cannot see it publish tasks"
