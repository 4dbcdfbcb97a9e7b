"""Each database gate of the load report can fail, on a real PostgreSQL and real commits, and passes without the fault.

The server is started like ``racelab serve`` starts its own (lock waits of 100 ms or more
logged), with ``max_connections`` 20. The load run's own test (``test_gate.py``) shows the
gates measured on the served app; these show that each one can breach.
"""
import os
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from racelab.dbwatch import SERVER_SETTINGS, DatabaseWatch
from racelab.harness import commit_log
from racelab.harness.services import postgres_driver, start_postgres
from racelab.reports.database import COMMIT_LOG_DIR
from racelab.reports.report import write_report

BARRIER_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def postgres():
    with start_postgres(settings={**SERVER_SETTINGS, "max_connections": "20"}) as server:
        connection = connect(server)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE account (id int PRIMARY KEY, balance int)")
            cursor.execute("INSERT INTO account VALUES (1, 0), (2, 0)")
        connection.close()
        yield server


def connect(server, autocommit=True):
    connection = postgres_driver().connect(server.url, connect_timeout=5)
    connection.autocommit = autocommit
    return connection


def gate(results, key, out):
    verdict, _ = write_report(results, out)
    return verdict.gate(key)


def watched(server, results):
    return DatabaseWatch(server.url, results, server_log=server.log_path, interval=0.05)


@pytest.mark.parametrize("delay", [None, "150ms"])
def test_an_injected_commit_delay_breaks_the_commit_duration_gate(delay, inject, transactional_db, tmp_path):
    if delay:
        inject(f"commit={delay}")
    commit_log.install(tmp_path / "results" / COMMIT_LOG_DIR)  # after the injection's points: it times them too
    try:
        for number in range(5):
            with transaction.atomic():
                Group.objects.create(name=f"group {number}")
    finally:
        commit_log.stop()

    result = gate(tmp_path / "results", "commit_p95_ms", tmp_path / "report")
    assert result.status == ("fail" if delay else "pass"), result.message()
    assert "5 commits" in result.source


def update_rows(server, rows, arrived=None, errors=()):
    """Update ``rows`` in order in one transaction; meet ``arrived`` after the first; keep an error in ``errors``."""
    connection = connect(server, autocommit=False)
    try:
        with connection.cursor() as cursor:
            for number, row in enumerate(rows):
                cursor.execute("UPDATE account SET balance = balance + 1 WHERE id = %s", (row,))
                if number == 0 and arrived:
                    arrived.wait(BARRIER_TIMEOUT_S)  # both hold their first row before either takes its second
        connection.commit()
    except Exception as exc:  # the deadlock victim; the test reads its error
        errors.append(exc)
    finally:
        connection.close()


def run_actors(*actors):
    threads = [threading.Thread(target=actor, daemon=True) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT_S * 2)
        assert not thread.is_alive(), "an updating transaction is still running after 20 s"


@pytest.mark.parametrize("opposite", [False, True])
def test_two_transactions_locking_rows_in_opposite_orders_break_the_deadlock_gate(opposite, postgres, tmp_path):
    errors = []
    # In the same order the second waits for the first, so it must not wait at the barrier too.
    arrived = threading.Barrier(2) if opposite else None
    orders = [(1, 2), (2, 1)] if opposite else [(1, 2), (1, 2)]
    with watched(postgres, tmp_path / "results"):
        run_actors(*(lambda order=order: update_rows(postgres, order, arrived, errors) for order in orders))

    result = gate(tmp_path / "results", "deadlocks", tmp_path / "report")
    if opposite:
        assert len(errors) == 1 and "deadlock" in str(errors[0]), errors
        assert result.status == "fail" and result.measured == 1, result.message()
    else:
        assert errors == [] and result.status == "pass", (errors, result.message())


def log_since(server, offset):
    with open(server.log_path, errors="replace") as log:
        log.seek(offset)
        return log.read()


def waiting_backends(server):
    connection = connect(server)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return cursor.fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize("held_past_the_threshold", [False, True])
def test_a_row_lock_held_past_100ms_breaks_the_lock_wait_gate(held_past_the_threshold, postgres, tmp_path, eventually):
    offset = os.path.getsize(postgres.log_path)
    holder = connect(postgres, autocommit=False)
    with watched(postgres, tmp_path / "results"):
        with holder.cursor() as cursor:
            cursor.execute("UPDATE account SET balance = 0 WHERE id = 1")

        def release_when_waited_on():
            try:
                if held_past_the_threshold:  # the server logs a wait once it has lasted 100 ms
                    eventually(lambda: " still waiting for " in log_since(postgres, offset), timeout=10,
                               message="PostgreSQL to log the waiting update")
                else:
                    eventually(lambda: waiting_backends(postgres), timeout=10, message="the second update to wait")
            finally:
                holder.commit()

        run_actors(lambda: update_rows(postgres, [1]), release_when_waited_on)
    holder.close()

    result = gate(tmp_path / "results", "lock_waits_per_hour", tmp_path / "report")
    assert result.status == ("fail" if held_past_the_threshold else "pass"), result.message()
    if held_past_the_threshold:  # the gate names the statement that waited and the row it waited for
        assert "from the server log; the first: UPDATE account SET balance = balance + 1 WHERE id = " in result.source
        assert result.source.endswith('in relation "account")'), result.source
    else:
        assert result.source.endswith("from the server log"), result.source


@pytest.mark.parametrize("opened", [5, 17])
def test_connections_near_max_connections_break_the_connection_gate(opened, postgres, tmp_path, eventually):
    with watched(postgres, tmp_path / "results") as watch:
        connections = [connect(postgres) for _ in range(opened)]
        try:
            eventually(lambda: any(sum(s["connections"].values()) >= opened for s in watch.data["samples"]),
                       timeout=10, message=f"a sample that counts all {opened} connections")
        finally:
            for connection in connections:
                connection.close()

    result = gate(tmp_path / "results", "connections_peak_pct", tmp_path / "report")
    assert result.status == ("fail" if opened == 17 else "pass"), result.message()
    assert "of max_connections 20" in result.source


@pytest.mark.parametrize("commit_delay", [None, "200ms"])
def test_a_write_lock_held_past_100ms_on_sqlite_breaks_the_lock_wait_gate(commit_delay, sync_points, inject,
                                                                          transactional_db, tmp_path):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL's row locks are the test above (run with --race-db sqlite)")
    first_holds_the_lock = threading.Event()
    sync_points.on("db.commit", lambda context: first_holds_the_lock.set())  # before the delay: the lock is held
    if commit_delay:
        inject(f"commit={commit_delay}")  # the first writer holds SQLite's write lock that long
    commit_log.install(tmp_path / "results" / COMMIT_LOG_DIR)

    def write(name, after=None):
        try:
            if after is not None:
                assert after.wait(BARRIER_TIMEOUT_S), "the first writer never reached its commit"
            with transaction.atomic():  # BEGIN IMMEDIATE: waits for the write lock
                Group.objects.create(name=name)
        finally:
            connection.close()

    try:
        run_actors(lambda: write("first"), lambda: write("second", after=first_holds_the_lock))
    finally:
        commit_log.stop()

    result = gate(tmp_path / "results", "lock_waits_per_hour", tmp_path / "report")
    assert Group.objects.count() == 2
    assert result.status == ("fail" if commit_delay else "pass"), result.message()
    assert result.source.startswith("1 wait(s)" if commit_delay else "0 wait(s)"), result.source
