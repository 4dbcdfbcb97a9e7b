"""Insert many tasks in one statement, without compiling SQL per value.

:func:`insert_tasks` is the one write path of an import's tasks. On PostgreSQL
it allocates the ids from the table's sequence in one query and streams the rows
with ``COPY … FROM STDIN`` (psycopg 3's ``cursor.copy()``); on SQLite it
allocates the ids under the write lock and runs one prepared ``INSERT`` over all
rows (``executemany``). Either way the JSON columns hold the values
``bulk_create`` writes, and every statement passes through the connection's
execute wrappers, so query logs and race points see it.

It opens no transaction of its own and commits nothing: the caller's
``transaction.atomic()`` decides when the tasks become visible.
"""
import functools
import json

import orjson
from django.db import connections, router
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from label_studio.tasks.models import Task

#: The columns a row gives, in order; ``id`` and ``created_at`` are filled in here.
COLUMNS = ("project_id", "file_upload_id", "data", "meta", "inner_id")
_JSON = ("data", "meta")
NULL, BACKSLASH, TWO_BACKSLASHES = "\\N", "\\", "\\\\"  # of COPY's text format
EMPTY_OBJECT = json.dumps({})  # most tasks' meta
_SEQUENCES = {}  # PostgreSQL: database alias -> the sequence of the tasks' ids (see _sequence)


def insert_tasks(rows):
    """Insert ``rows`` (dicts with the keys of :data:`COLUMNS`) as tasks; return their ids, in the rows' order.

    Must run inside ``transaction.atomic()``: on SQLite the ids are read and used
    under the transaction's write lock. Raises TransactionManagementError
    otherwise, and writes nothing. An empty ``rows`` runs no query.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(Task)]
    if not connection.in_atomic_block:
        raise TransactionManagementError(
            "insert_tasks() must run inside transaction.atomic(): wrap the call and the rows it depends on in one.")
    writers = {name: _json_writer(connection, Task._meta.get_field(name)) for name in _JSON}
    created_at = Task._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    with connection.cursor() as cursor:
        ids = _allocate_ids(connection, cursor, len(rows))
        values = [
            (task_id, row["project_id"], row["file_upload_id"], writers["data"](row["data"]),
             writers["meta"](row["meta"]), row["inner_id"], created_at)
            for task_id, row in zip(ids, rows)
        ]
        if connection.vendor == "postgresql":
            _copy(cursor, values)
        else:
            cursor.executemany(f"INSERT INTO {_table(connection)} ({_columns(connection)}) "
                               f"VALUES ({', '.join(['%s'] * (len(COLUMNS) + 2))})", values)
    return ids


def _json_writer(connection, field):
    """Return the function that gives a value's JSON text for JSON ``field``.

    SQLite stores the text itself: the field's own encoder writes it, as
    ``bulk_create`` does. PostgreSQL parses the text into ``jsonb``, so any
    text of the same value stores the same: orjson writes it in a tenth of
    ``json.dumps``'s time, and what orjson refuses (an integer beyond 64 bits,
    a lone surrogate) goes to ``json.dumps``, which PostgreSQL then judges as
    before. One difference: orjson writes a NaN or an infinity as ``null``, where
    ``json.dumps``'s text is refused; the parsers refuse such numbers before
    (``parsers.check_tasks``). A field with an encoder of its own always uses it.
    """
    if connection.vendor != "postgresql" or field.encoder is not None:
        # {}, most tasks' meta, is encoded once, not per task.
        return lambda value: EMPTY_OBJECT if value == {} else json.dumps(value, cls=field.encoder)

    def write(value):
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:
            return json.dumps(value)
    return write


def _allocate_ids(connection, cursor, count):
    """Return ``count`` fresh task ids, ascending."""
    if connection.vendor == "postgresql":
        # nextval is atomic across sessions, so the ids are ours whatever commits around us; one round trip.
        # The sequence is named, not looked up by pg_get_serial_sequence() per row: that was 4 of 5 ms a 1000.
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [_sequence(cursor), count])
        return sorted(task_id for task_id, in cursor.fetchall())
    # SQLite: AUTOINCREMENT's high-water mark (never reused, unlike max(id)); the atomic block's
    # BEGIN IMMEDIATE holds the write lock, so no other writer takes these ids before our INSERT.
    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [Task._meta.db_table])
    found = cursor.fetchone()
    start = (found[0] if found else 0) + 1
    return list(range(start, start + count))


def _sequence(cursor):
    """Return the name of the sequence that gives the tasks' ids (PostgreSQL), looked up once per database."""
    alias = cursor.db.alias
    if alias not in _SEQUENCES:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Task._meta.db_table])
        _SEQUENCES[alias] = cursor.fetchone()[0]
    return _SEQUENCES[alias]


def _copy(cursor, values):
    """Stream ``values`` into the table with COPY, through the execute wrappers that ``cursor.execute`` passes."""
    connection = cursor.db
    statement = f"COPY {_table(connection)} ({_columns(connection)}) FROM STDIN"

    def copy(sql, params, many, context):
        with cursor.copy(sql) as copy:
            copy.write("".join(_copy_line(row) for row in values))

    # Django wraps execute() and executemany() only; this is its chain (utils.CursorWrapper._execute_with_wrappers).
    executor = copy
    for wrapper in reversed(connection.execute_wrappers):
        executor = functools.partial(wrapper, executor)
    with connection.wrap_database_errors:
        executor(statement, None, False, {"connection": connection, "cursor": cursor})


def _copy_line(values):
    """Return ``values`` as one line of COPY's text format: tab-separated, ``\\N`` for None, backslashes doubled.

    psycopg's ``write_row`` adapts each value in Python; these are ints, a time and JSON text. JSON text
    holds no raw tab, newline or carriage return (``json.dumps`` escapes them), so a backslash is all
    that COPY's format needs escaped.
    """
    task_id, project_id, file_upload_id, data, meta, inner_id, created_at = values
    file_upload_id = NULL if file_upload_id is None else file_upload_id
    return (f"{task_id}\t{project_id}\t{file_upload_id}\t{data.replace(BACKSLASH, TWO_BACKSLASHES)}\t"
            f"{meta.replace(BACKSLASH, TWO_BACKSLASHES)}\t{inner_id}\t{created_at}\n")


def _table(connection):
    return connection.ops.quote_name(Task._meta.db_table)


def _columns(connection):
    return ", ".join(connection.ops.quote_name(Task._meta.get_field(name).column)
                     for name in ("id", *COLUMNS, "created_at"))
