"""Benchmark what the tasks' foreign keys and indexes cost a 1000-row COPY on PostgreSQL, in one process.

Not a test: run it by hand, on an idle machine for figures worth quoting::

    python -m tests.service.bench_task_fks            # starts a throw-away PostgreSQL
    python -m tests.service.bench_task_fks --bindir /usr/lib/postgresql/18/bin

Each round copies the same 1000 rows (one project, one file upload, as an
import's unit writes them) into ``tasks_task`` and into two copies of it made
with ``LIKE``: one with its indexes but no foreign keys, one with neither, in
turn, each in its own transaction. It prints the median milliseconds of the
COPY and of the COMMIT: Django makes foreign keys ``DEFERRABLE INITIALLY
DEFERRED``, so PostgreSQL checks each row's keys, one query per key, at the
commit (with ``SET CONSTRAINTS ALL IMMEDIATE``, at the end of the COPY).
"""
import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time

ROWS = 1000
TABLES = (("tasks_task", "tasks_task, as migrated", ""),
          ("tasks_task", "tasks_task, keys checked at the COPY", "SET CONSTRAINTS ALL IMMEDIATE"),
          ("bench_no_fks", "its indexes, no foreign keys", ""),
          ("bench_bare", "no indexes, no foreign keys", ""))


def run(rounds):
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from label_studio.data_import.models import FileUpload
    from label_studio.projects.models import Project
    from label_studio.tasks.bulk import _columns, _copy_line
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    user = UserFactory()
    project = Project.objects.create(title="bench", created_by=user)
    upload = FileUpload.objects.create(project=project, user=user, original_name="tasks.csv")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_no_fks (LIKE tasks_task INCLUDING ALL)")
        cursor.execute("CREATE TABLE bench_bare (LIKE tasks_task INCLUDING DEFAULTS)")
    next_id, samples = 0, {}
    for round_number in range(rounds + 2):  # two rounds warm up: plans, caches
        for table, label, setup in TABLES if round_number % 2 else TABLES[::-1]:
            lines = "".join(_copy_line((next_id + n, project.id, upload.id, json.dumps({"text": f"csv task {n}", "n": str(n)}),
                                        "{}", n, "2026-01-01 00:00:00+00")) for n in range(1, ROWS + 1))
            next_id += ROWS
            with transaction.atomic(), connection.cursor() as cursor:
                if setup:
                    cursor.execute(setup)
                started = time.perf_counter()
                with cursor.cursor.copy(f"COPY {table} ({_columns(connection)}) FROM STDIN") as copy:  # psycopg's cursor
                    copy.write(lines)
                copied = time.perf_counter()
            committed = time.perf_counter()
            if round_number >= 2:
                samples.setdefault(label, []).append((copied - started, committed - copied, committed - started))
    print(f"{ROWS} rows a COPY, median of {rounds} rounds (ms):")
    print(f"{'into':<40}{'COPY':>8}{'COMMIT':>8}{'total':>8}")
    for label, times in samples.items():
        copy_ms, commit_ms, total_ms = (1000 * statistics.median(column) for column in zip(*times))
        print(f"{label:<40}{copy_ms:>8.2f}{commit_ms:>8.2f}{total_ms:>8.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--bindir", help="the PostgreSQL binaries to run (default: the harness finds them)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings")
    os.environ.setdefault("RACELAB_LOG_LEVEL", "WARNING")
    with contextlib.ExitStack() as stack:
        from racelab.harness.services import start_postgres

        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="racelab-bench-"))
        os.environ["RACELAB_HOME"] = os.environ["MEDIA_ROOT"] = home
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # never dialled: nothing here enqueues
        os.environ["DATABASE_URL"] = stack.enter_context(start_postgres(bindir=args.bindir)).url
        run(args.rounds)


if __name__ == "__main__":
    main()
