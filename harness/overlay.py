"""Carry a test's settings into the worker processes it starts: its test database, its Redis, what it changed.

A worker process imports the app's own settings module, which knows nothing of the test: not the
test database pytest-django created, not the Redis the test points its queues at, not the fix
flag a test turned off with the ``settings`` fixture. :func:`capture` (in the test process)
takes each database's live connection settings and every setting whose value differs from the
settings module's own; :func:`apply_from_env` (in the worker, before ``django.setup()``) sets
them again. So the app's settings need not read ``DATABASE_URL`` or any variable of ours.

Values cross as JSON: a ``Path`` becomes a string; a changed setting that JSON cannot carry is
left out, with a warning naming it (set it through the worker's environment instead,
``rq_worker_process(env=...)``).
"""
from __future__ import annotations

import importlib
import json
import os
import warnings
from pathlib import PurePath

__all__ = ["ENV", "capture", "environ", "apply_from_env"]

ENV = "RACELAB_SETTINGS_OVERLAY"
_MISSING = object()


def capture() -> dict:
    """Return ``{setting: value}`` to give a worker: ``DATABASES`` as the test's connections use them, and changes."""
    from django.conf import global_settings, settings
    from django.db import connections

    module = importlib.import_module(settings.SETTINGS_MODULE) if settings.SETTINGS_MODULE else None
    overlay = {}
    for name in dir(settings):
        if not name.isupper() or name == "DATABASES":
            continue
        value = getattr(settings, name)
        original = getattr(module, name, _MISSING) if module else _MISSING
        if original is _MISSING:
            original = getattr(global_settings, name, _MISSING)
        if value != original:
            overlay[name] = value
    overlay = {name: value for name, value in overlay.items() if _portable(name, value)}
    overlay["DATABASES"] = {alias: _database(connections[alias]) for alias in connections}
    return overlay


def environ() -> dict:
    """Return ``{ENV: <the captured overlay as JSON>}`` for a child process's environment."""
    return {ENV: json.dumps(capture(), default=_encode)}


def apply_from_env(environ=None) -> list[str]:
    """Set each setting of ``$RACELAB_SETTINGS_OVERLAY`` on ``django.conf.settings``; return their names.

    Call it after ``DJANGO_SETTINGS_MODULE`` is set and before ``django.setup()``, so that no app,
    connection or library (django-rq reads ``RQ_QUEUES`` once) has read the originals. Does
    nothing when the variable is unset.
    """
    environ = os.environ if environ is None else environ
    if not environ.get(ENV):
        return []
    from django.conf import settings

    overlay = json.loads(environ[ENV])
    for name, value in overlay.items():
        setattr(settings, name, value)
    return sorted(overlay)


def _database(connection) -> dict:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        raise RuntimeError(
            f"The test database {connection.alias!r} is SQLite in memory, which another process cannot open. Run "
            "pytest with --race-db sqlite (racelab puts the test database in a file), or set "
            f"DATABASES[{connection.alias!r}]['TEST']['NAME'] to a file path.")
    settings_dict = dict(connection.settings_dict)
    settings_dict["NAME"] = str(settings_dict["NAME"])
    return settings_dict


def _portable(name, value) -> bool:
    try:
        json.dumps(value, default=_encode)
    except (TypeError, ValueError):
        warnings.warn(f"racelab: the test changed setting {name}, whose value {value!r:.80} JSON cannot carry, so "
                      "worker processes keep the settings module's value. Give it to them through their environment "
                      "instead: rq_worker_process(env={...}).", stacklevel=3)
        return False
    return True


def _encode(value):
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
