"""Built-in race points of Django's database layer: every statement and every transaction end, in any app.

:func:`install` adds them once per process (:func:`racelab.harness.points.install` calls it); the
app needs no race point of its own. With no controller installed a point costs one function call.

- ``db.execute`` (alias, verb, table, tables, lock, autocommit, sql) — before a SQL statement reaches
  the database, through Django's ``connection.execute_wrapper``. ``verb`` is the statement's first
  word (``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``, ``SAVEPOINT``…), ``table`` the table it
  reads or writes first, ``tables`` every table it names, ``lock`` whether it is a ``SELECT … FOR
  UPDATE``, ``autocommit`` whether it commits on its own, ``sql`` its first 160 characters;
- ``db.executed`` (the same, plus ``error`` when it raised) — after the statement returned (on
  SQLite, a write with ``RETURNING`` in autocommit commits only once its rows are read: its
  ``db.executed`` and ``db.on_commit`` wait for that, the cursor's close or the next statement);
- ``db.commit`` (alias, tables, autocommit) — before a transaction's COMMIT reaches the database,
  ``tables`` being the tables it wrote; and before a write that runs in autocommit mode
  (``autocommit=True``, with its verb and table), which is its own transaction: a model's
  ``save()`` outside ``atomic()`` commits there;
- ``db.on_commit`` (alias, autocommit) — once that COMMIT (or autocommit write) returned, before
  the transaction's ``on_commit`` callbacks run;
- ``db.rollback`` (alias, tables) — before a transaction's ROLLBACK.

A statement that a controller's own callback runs at a point passes no point: a callback cannot
recurse into itself. Nothing here changes what a statement or a transaction does.
"""
from __future__ import annotations

import functools
import re
import threading

from racelab.harness import race
from racelab.harness.race import race_point

__all__ = ["install", "describe_sql", "WRITES"]

#: The statement verbs that change rows (``COPY`` counts as one: ``COPY t FROM STDIN`` is a bulk insert).
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "COPY"})
_TABLES = re.compile(r'\b(?:FROM|JOIN|INTO|UPDATE)\s+[`"\[]?([A-Za-z_][\w$]*)', re.IGNORECASE)
_COPY = re.compile(r'COPY\s+[`"\[]?([A-Za-z_][\w$]*)[`"\]]?\s*(?:\([^)]*\))?\s+(FROM|TO)\b', re.IGNORECASE)
_busy = threading.local()  # set while this thread runs a controller's hit: its own SQL passes no point
_installed = False


def describe_sql(sql: str) -> dict:
    """Return ``{"verb", "table", "tables", "lock"}`` of one SQL statement, read from its text alone."""
    text = sql.lstrip()
    verb = text.split(None, 1)[0].upper() if text else ""
    copy = _COPY.match(text) if verb == "COPY" else None
    if copy:  # COPY t FROM STDIN writes t; COPY t TO STDOUT reads it (STDIN/STDOUT are no tables)
        verb = "COPY" if copy.group(2).upper() == "FROM" else "SELECT"
        return {"verb": verb, "table": copy.group(1), "tables": [copy.group(1)], "lock": False}
    tables = list(dict.fromkeys(_TABLES.findall(text)))
    return {"verb": verb, "table": tables[0] if tables else None, "tables": tables,
            "lock": verb == "SELECT" and " FOR UPDATE" in text.upper()}


def install() -> None:
    """Wrap Django's commit, rollback and on-commit run, and every connection's statements; once per process."""
    global _installed
    if _installed:
        return
    from django.conf import settings
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created
    from django.db.backends.utils import CursorWrapper

    _wrap(BaseDatabaseWrapper, "commit", _before_commit)
    _wrap(BaseDatabaseWrapper, "rollback", _before_rollback)
    _wrap(BaseDatabaseWrapper, "run_and_clear_commit_hooks",
          lambda self: _point("db.on_commit", alias=self.alias, autocommit=False))
    original_exit = CursorWrapper.__exit__

    @functools.wraps(original_exit)
    def cursor_exit(self, *exc_info):
        result = original_exit(self, *exc_info)
        _flush(self.db)
        return result

    CursorWrapper.__exit__ = cursor_exit
    connection_created.connect(_watch_statements, dispatch_uid="racelab.harness.django_points")
    if settings.configured:
        for connection in connections.all(initialized_only=True):
            _watch_statements(None, connection)
    _installed = True


def _point(name, **context):
    if getattr(_busy, "active", False):
        return
    _busy.active = True
    try:
        race_point(name, **context)
    finally:
        _busy.active = False


def _wrap(cls, name, before):
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        if race.installed() is not None:
            before(self)
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


def _written(connection) -> set:
    written = connection.__dict__.get("_racelab_written")
    if written is None:
        written = connection.__dict__["_racelab_written"] = set()
    return written


def _flush(connection):
    """Pass the after-points a SQLite ``RETURNING`` write held back: its rows are read, so it has committed."""
    after = connection.__dict__.pop("_racelab_after", None)
    for name, context in after or ():
        _point(name, **context)


def _before_commit(connection):
    _flush(connection)
    tables = sorted(_written(connection))
    _written(connection).clear()
    _point("db.commit", alias=connection.alias, tables=tables, autocommit=False)


def _before_rollback(connection):
    _flush(connection)
    tables = sorted(_written(connection))
    _written(connection).clear()
    _point("db.rollback", alias=connection.alias, tables=tables)


def _watch_statements(sender, connection, **kwargs):
    # First in the list: a caller's own ``with connection.execute_wrapper(...)`` pops the last one.
    if _execute not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _execute)


def _execute(execute, sql, params, many, context):
    if race.installed() is None or getattr(_busy, "active", False):
        return execute(sql, params, many, context)
    connection, text = context["connection"], str(sql)
    _flush(connection)
    autocommit = connection.get_autocommit() and not connection.in_atomic_block
    point = {"alias": connection.alias, **describe_sql(text), "autocommit": autocommit, "sql": text[:160]}
    write = point["verb"] in WRITES
    _point("db.execute", **point)
    if write and autocommit:
        _point("db.commit", alias=connection.alias, tables=point["tables"][:1], autocommit=True,
               verb=point["verb"], table=point["table"])
    elif write and point["table"]:
        _written(connection).add(point["table"])
    try:
        result = execute(sql, params, many, context)
    except Exception as exc:
        _point("db.executed", **point, error=type(exc).__name__)
        raise
    after = [("db.executed", point)] + ([("db.on_commit", {"alias": connection.alias, "autocommit": True})]
                                        if write and autocommit else [])
    if write and autocommit and connection.vendor == "sqlite" and " RETURNING " in text.upper():
        connection.__dict__["_racelab_after"] = after  # SQLite commits it when its rows have been read
    else:
        for name, values in after:
            _point(name, **values)
    return result
