"""Benchmark the tasks' write path in one process: ``bulk_create`` (before) against :func:`insert_tasks` (now).

Not a test: run it by hand, on an idle machine for figures worth quoting::

    python -m tests.service.bench_task_insert --db postgres   # starts a throw-away PostgreSQL
    python -m tests.service.bench_task_insert --db sqlite

Each round imports the same 1000-task JSON file with ``services.sync_import``
once per path, in alternating order, so that both see the same machine load;
it prints the median milliseconds of each and their ratio.
"""
import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time


def old_insert_tasks(project_id, tasks, inner_ids):
    """The write path before COPY: one ``bulk_create`` of Task objects (what ``_insert_tasks`` did)."""
    from label_studio.data_import import services
    from label_studio.tasks.models import Task

    if not tasks:
        return []
    rows = [
        Task(project_id=project_id, file_upload_id=file_upload.id if file_upload else None, data=task["data"],
             meta={key: task[key] for key in ("annotations", "predictions", "meta") if key in task},
             inner_id=inner_id)
        for (file_upload, task), inner_id in zip(tasks, inner_ids)
    ]
    Task.objects.bulk_create(rows, batch_size=services.BATCH_SIZE)
    return [row.id for row in rows]


def one_file(count):
    return json.dumps([{"text": f"task {n}: a sentence of some length to label, with ünïcode", "n": n,
                        "url": f"https://example.org/items/{n}.jpg", "tags": ["a", "b", n % 7]}
                       for n in range(count)]).encode()


def run(rounds, count):
    import django
    from unittest import mock

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from label_studio.data_import import services
    from label_studio.projects.models import Project
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    user = UserFactory()
    project = Project.objects.create(title="bench", created_by=user)
    upload = services.Upload("tasks.json", one_file(count))
    new_insert = services._insert_tasks

    def import_once(insert):
        with mock.patch.object(services, "_insert_tasks", insert):
            began = time.perf_counter()
            response = services.sync_import(project, user, [upload])
            elapsed = (time.perf_counter() - began) * 1000
        assert response["task_count"] == count, response
        return elapsed

    timings = {"bulk_create": [], "insert_tasks": []}
    paths = [("bulk_create", old_insert_tasks), ("insert_tasks", new_insert)]
    for path in paths:  # warm both up: imports, prepared plans, the file system
        import_once(path[1])
    for n in range(rounds):
        for name, insert in paths if n % 2 == 0 else reversed(paths):
            timings[name].append(import_once(insert))
    old, new = (statistics.median(timings[name]) for name, _ in paths)
    print(f"{connection.vendor}: sync_import of {count} tasks, median of {rounds} rounds: "
          f"bulk_create {old:.1f} ms, insert_tasks {new:.1f} ms, ratio {old / new:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings")
    os.environ.setdefault("RACELAB_LOG_LEVEL", "WARNING")  # no event line per import
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="racelab-bench-"))
        os.environ["RACELAB_HOME"] = os.environ["MEDIA_ROOT"] = home
        if args.db == "postgres":
            from racelab.harness.services import start_postgres

            os.environ["DATABASE_URL"] = stack.enter_context(start_postgres()).url
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{home}/bench.sqlite3"
        run(args.rounds, args.tasks)


if __name__ == "__main__":
    main()
