"""Django's version of the core plugin's internal actor hook (imported by :mod:`racelab.harness.plugin`).

The Django + RQ fixtures themselves (``use_redis``, ``rq_worker_thread``, ``rq_worker_process``,
``inject``, ``eventually``) live in :mod:`racelab.harness.django_plugin`.
"""
import pytest

__all__ = ["_racelab_actor_teardown", "refuse_in_memory_sqlite"]


@pytest.fixture
def _racelab_actor_teardown():
    """Return the function each actor thread calls as it ends: close its own database connections.

    Without configured Django settings there is nothing to close (None).
    """
    from django.conf import settings

    if not settings.configured:
        return None
    from django.db import connections

    return connections.close_all


def refuse_in_memory_sqlite(what: str) -> None:
    """Raise UsageError when a test database is SQLite in memory, which concurrent actors cannot share.

    Threads share it only through a shared cache that locks whole tables ("database table is
    locked", seen only in a worker's log while the test times out); other processes cannot open it.
    """
    from django.db import connections

    for connection in connections.all():
        if connection.vendor == "sqlite" and connection.is_in_memory_db():
            raise pytest.UsageError(
                f"{what} need a test database they can share, but {connection.alias!r} is SQLite in memory: threads "
                "would meet 'database table is locked' and processes cannot open it. Run pytest with --race-db sqlite "
                "(racelab puts the test database in a file), or set "
                f"DATABASES[{connection.alias!r}]['TEST']['NAME'] to a file path.")
