"""Time every database commit of this process, and every wait for SQLite's write lock, into a log.

A load run's report reads these logs for its commit-duration and lock-wait gates
(:mod:`racelab.reports.database`): only the app's own processes can see how long
their commits took. :func:`install_from_env` starts it when ``RACELAB_COMMIT_LOG``
names a directory; :func:`racelab.harness.points.install_from_env` calls it, so a
served app gets it with the rest of racelab's start-up hook. Each process appends
JSON lines to ``<directory>/commits-<pid>.jsonl``:

- ``{"t": epoch seconds, "commit_ms": …, "vendor": …}`` — one per transaction: the
  time ``connection.commit()`` took (an autocommit statement is its own transaction
  and is not timed apart from its statement);
- ``{"t", "lock_wait_ms"}`` — SQLite only: a ``BEGIN IMMEDIATE`` that waited
  :data:`LOCK_WAIT_MS` or more for the write lock (SQLite's busy handler retries out
  of Python's sight; the time the statement took is what can be seen);
- ``{"t", "locked_error": sql}`` — SQLite only: a statement that gave up with
  "database is locked".

Writes are unbuffered, one ``write`` per line in append mode, so a work horse that
ends with ``os._exit`` loses nothing and processes never interleave a line.
"""
from __future__ import annotations

import functools
import json
import os
import time

ENV = "RACELAB_COMMIT_LOG"
LOCK_WAIT_MS = 100  # also the PostgreSQL deadlock_timeout racelab serves with: one meaning of "a lock wait"

_directory: str | None = None
_handle = None  # (pid, file): reopened after a fork
_installed = False

__all__ = ["ENV", "LOCK_WAIT_MS", "install", "install_from_env", "stop"]


def install_from_env(environ=None) -> bool:
    """Start logging to ``$RACELAB_COMMIT_LOG`` if it is set; return whether it was."""
    directory = (environ if environ is not None else os.environ).get(ENV)
    if directory:
        install(directory)
    return bool(directory)


def install(directory) -> None:
    """Log this process's commits and SQLite lock waits into ``directory`` from now on."""
    global _directory, _installed
    os.makedirs(directory, exist_ok=True)
    _directory = str(directory)
    if _installed:
        return
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    original = BaseDatabaseWrapper.commit

    @functools.wraps(original)
    def commit(self, *args, **kwargs):
        if _directory is None:
            return original(self, *args, **kwargs)
        began = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        except Exception as exc:
            _note_locked(self, exc, "COMMIT")
            raise
        finally:
            _write({"t": round(time.time(), 3), "commit_ms": round((time.perf_counter() - began) * 1000, 3),
                    "vendor": self.vendor})

    BaseDatabaseWrapper.commit = commit
    connection_created.connect(_watch_sqlite, dispatch_uid="racelab.harness.commit_log")
    _installed = True


def stop() -> None:
    """Stop logging (the wrappers stay, as cheap as a check of one global)."""
    global _directory, _handle
    _directory = None
    if _handle is not None:
        _handle[1].close()
        _handle = None


def _watch_sqlite(sender, connection, **kwargs):
    if connection.vendor == "sqlite" and _sqlite_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(_sqlite_statement)


def _sqlite_statement(execute, sql, params, many, context):
    if _directory is None:
        return execute(sql, params, many, context)
    began = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        _note_locked(context["connection"], exc, sql)
        raise
    finally:
        waited = (time.perf_counter() - began) * 1000
        if waited >= LOCK_WAIT_MS and str(sql).lstrip().upper().startswith("BEGIN"):
            _write({"t": round(time.time(), 3), "lock_wait_ms": round(waited, 3)})


def _note_locked(connection, exc, sql):
    if connection.vendor == "sqlite" and "database is locked" in str(exc):
        _write({"t": round(time.time(), 3), "locked_error": str(sql)[:120]})


def _write(record):
    global _handle
    if _directory is None:
        return
    pid = os.getpid()
    if _handle is None or _handle[0] != pid:
        path = os.path.join(_directory, f"commits-{pid}.jsonl")
        _handle = (pid, open(path, "ab", buffering=0))
    _handle[1].write((json.dumps(record) + "\n").encode())
