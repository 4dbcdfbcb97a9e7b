"""The ``--race-db`` choice: point an app's default database at SQLite, a throw-away PostgreSQL or a URL.

Without ``--race-db`` the app's own ``DATABASES`` stand, untouched. With it, the pytest controller
resolves the choice once into a URL (:func:`resolve`: ``sqlite`` becomes a file in a temp dir,
``postgres`` a server started for the run) that xdist workers inherit, and every process rewrites
``DATABASES["default"]`` from it (:func:`apply`) after Django's settings are loaded and before
any test touches the database. The app's settings need not read ``DATABASE_URL`` or anything of ours.

When the app's default already is that engine its other options (``OPTIONS``, ``CONN_MAX_AGE``,
``TEST``…) are kept, only the connection changes; across engines they are dropped, since one
engine's options mean nothing to another. An app already on a SQLite file keeps it under
``--race-db sqlite``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from urllib.parse import unquote, urlparse

__all__ = ["CHOICES", "ENV", "DatabaseChoiceError", "resolve", "apply", "parse_url", "chosen"]

CHOICES = ("sqlite", "postgres")
ENV = "RACELAB_DB_URL"  # the resolved choice, set by the pytest controller for its xdist workers
POSTGRES_ENGINE = "django.db.backends.postgresql"
SQLITE_ENGINE = "django.db.backends.sqlite3"
_SQLITE_OPTIONS = {"timeout": 30}  # concurrent writers wait for the write lock instead of failing at once


class DatabaseChoiceError(ValueError):
    """A ``--race-db`` value racelab cannot use; the message says what it accepts."""


def parse_url(url: str) -> dict:
    """Return the Django ``DATABASES`` entry of a ``postgres://`` or ``sqlite:///`` URL.

    Hand-written rather than dj-database-url: two schemes do not justify a dependency.
    """
    parts = urlparse(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        return {"ENGINE": POSTGRES_ENGINE, "NAME": unquote(parts.path.lstrip("/")) or "postgres",
                "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname or "", "PORT": str(parts.port or "")}
    if parts.scheme == "sqlite":
        path = unquote(parts.path)[1:]  # sqlite:////abs/path or sqlite:///relative/path, as dj-database-url reads them
        if not path or path == ":memory:":
            raise DatabaseChoiceError(f"--race-db {url}: give a SQLite file, e.g. sqlite:////tmp/test.sqlite3; an "
                                      "in-memory database is invisible to other processes and locks whole tables.")
        return {"ENGINE": SQLITE_ENGINE, "NAME": path, "OPTIONS": dict(_SQLITE_OPTIONS),
                "TEST": {"NAME": path + "-test"}}
    raise DatabaseChoiceError(f"--race-db {url!r}: use sqlite, postgres, postgres://USER:PASSWORD@HOST:PORT/NAME "
                              "or sqlite:////absolute/path.sqlite3.")


class _ThrowAwayDirectory:
    """The directory of a throw-away SQLite file; ``stop()`` deletes it, as a started PostgreSQL is stopped."""

    def __init__(self, path):
        self.path = path

    def stop(self):
        shutil.rmtree(self.path, ignore_errors=True)


def resolve(choice: str, started: list) -> str:
    """Return the URL of ``choice``: a PostgreSQL started for ``postgres``, a file in a new directory for
    ``sqlite``; each is appended to ``started``, whose ``stop()`` removes it at the end of the run."""
    if choice == "postgres":
        from racelab.harness.services import start_postgres

        service = start_postgres()
        started.append(service)
        return service.url
    if choice == "sqlite":
        directory = _ThrowAwayDirectory(tempfile.mkdtemp(prefix="racelab-db-"))
        started.append(directory)
        return f"sqlite:///{directory.path}/db.sqlite3"
    if "://" in choice:
        parse_url(choice)  # fail now, with the reason, not at the first query
        return choice
    raise DatabaseChoiceError(f"--race-db {choice!r} is not a database; use one of {', '.join(CHOICES)} or a URL.")


def apply(url: str) -> None:
    """Point ``settings.DATABASES["default"]`` at ``url``, in place, before any test uses the database."""
    from django.conf import settings
    from django.db import connections

    current = settings.DATABASES.setdefault("default", {})
    wanted = parse_url(url)
    if current.get("ENGINE") == SQLITE_ENGINE and wanted["ENGINE"] == SQLITE_ENGINE and not _in_memory(current):
        return  # the app's own SQLite file, with its own options
    if current.get("ENGINE") == wanted["ENGINE"]:
        wanted = {**current, **wanted, "OPTIONS": {**current.get("OPTIONS", {}), **wanted.get("OPTIONS", {})},
                  "TEST": {**current.get("TEST", {}), **wanted.get("TEST", {})}}
    if wanted["ENGINE"] == POSTGRES_ENGINE:
        wanted.setdefault("TEST", {}).pop("NAME", None)  # pytest-django names it test_<NAME>, per xdist worker
    current.clear()
    current.update(wanted)
    connections.configure_settings(settings.DATABASES)  # the defaults Django fills in (TEST, OPTIONS...), in place
    # Loading the models made a wrapper of the old engine (for its name-length limit): the next use makes a new one.
    if any(c.alias == "default" for c in connections.all(initialized_only=True)):
        connections["default"].close()
        del connections["default"]


def _in_memory(database: dict) -> bool:
    test_name = (database.get("TEST") or {}).get("NAME")
    return not test_name or str(test_name) == ":memory:" or "mode=memory" in str(test_name)


def chosen() -> str | None:
    """Return the URL the controller resolved for this run, or None without ``--race-db``."""
    return os.environ.get(ENV) or None
