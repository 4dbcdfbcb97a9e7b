"""Many imports into one project at once: concurrent uploads, rapid sequences, sync and async mixed.

Each test starts its actors together (``concurrently``), a reader among them, records every
operation, then holds the invariants over the history and the final rows: every import
completed, every listed count equal to the Task rows and to the file, inner ids unique and the
project's count exact, and no reader ever saw a ``completed`` upload short of its tasks. Each runs
with and without injected delays (``commit`` holds every COMMIT, ``worker`` every job start).
"""
import pytest

from label_studio.data_import import services
from scenarios.common import RUN_IMPORT, json_upload, record_jobs
from scenarios.invariants import (
    completed_imports_have_all_tasks, inner_ids_unique, no_partial_tasks_visible, status_tells_processing_from_empty,
    sync_upload_has_all_its_tasks,
)
from tests.concurrency.support import (
    CONCURRENT_UPLOADS, Finished, Reader, acknowledged_imports_are_read_whole, assert_delays_applied, async_importer,
    check, completed_import_polled_whole, every_import_completed, expected_tasks, final_state, imports_final, inject,
    listed_counts_are_task_rows, project_tasks_exact, sync_importer,
)
from tests.conftest import json_tasks, named

pytestmark = pytest.mark.django_db(transaction=True)

RAPID_SYNC_IMPORTS = 30
RAPID_ASYNC_IMPORTS = 12

SYNC_INVARIANTS = (every_import_completed, listed_counts_are_task_rows, project_tasks_exact, inner_ids_unique,
                   sync_upload_has_all_its_tasks, acknowledged_imports_are_read_whole,
                   status_tells_processing_from_empty, no_partial_tasks_visible)
ASYNC_INVARIANTS = (every_import_completed, listed_counts_are_task_rows, project_tasks_exact,
                    completed_imports_have_all_tasks, status_tells_processing_from_empty, no_partial_tasks_visible,
                    completed_import_polled_whole)


def api_import(client, project, name, tasks):
    """Import a JSON file of ``tasks`` tasks through the API, synchronously; return the 201 body."""
    response = client.post(f"/api/projects/{project.id}/import?async=false",
                           {"file": [named(name, json_tasks(tasks))]}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize("delays", ["none", "commit"])
def test_many_concurrent_uploads_into_one_project(delays, project, user, client_for, sync_points, concurrently,
                                                  race_history, race_checker):
    """RACELAB_CONCURRENT_UPLOADS web requests (24 by default) upload into one project while a reader lists it."""
    inject(sync_points, delays)
    sizes = {f"upload#{n}": 1 + n % 7 for n in range(1, CONCURRENT_UPLOADS + 1)}
    clients = {name: client_for(user) for name in sizes}  # tokens made here, not raced for in the actors
    finished = Finished(len(sizes))
    actors = {name: finished.wrap(name, sync_importer(
        race_history, name, lambda name=name, tasks=tasks: api_import(clients[name], project, f"{name}.json", tasks),
        tasks)) for name, tasks in sizes.items()}
    actors["reader#1"] = Reader(race_history, project, until=finished)

    concurrently(actors, timeout=120)

    assert_delays_applied(sync_points, delays)
    check(race_checker, final_state(project, expected_tasks(race_history)), *SYNC_INVARIANTS)


@pytest.mark.parametrize("delays", ["none", "commit"])
def test_rapid_sequential_sync_imports_into_one_project(delays, project, user, sync_points, concurrently,
                                                        race_history, race_checker):
    """One client imports 30 files back to back, each request right after the last returned, under a reader."""
    inject(sync_points, delays)
    finished = Finished(1)

    def importer():
        for n in range(RAPID_SYNC_IMPORTS):
            tasks = 1 + n % 5
            sync_importer(race_history, "importer#1", lambda: services.sync_import(
                project, user, [json_upload(f"seq-{n}.json", tasks)]), tasks)()

    concurrently({"importer#1": finished.wrap("importer#1", importer),
                  "reader#1": Reader(race_history, project, until=finished)}, timeout=120)

    assert_delays_applied(sync_points, delays)
    check(race_checker, final_state(project, expected_tasks(race_history)), *SYNC_INVARIANTS)


@pytest.mark.parametrize("delays", ["none", "worker"])
def test_rapid_sequential_async_imports_on_three_workers(delays, project, user, sync_points, rq_worker_threads,
                                                         concurrently, race_history, race_checker):
    """One client starts 12 async imports back to back; three workers run them while more arrive."""
    inject(sync_points, delays)
    record_jobs(sync_points, race_history, RUN_IMPORT, "import-job")
    rq_worker_threads(3)
    import_ids, finished = [], Finished(1)

    def importer():
        for n in range(RAPID_ASYNC_IMPORTS):
            tasks = 10 * (1 + n % 5)
            async_importer(race_history, "importer#1", project, user, [(json_upload(f"seq-{n}.json", tasks), tasks)],
                           import_ids)()

    done = imports_final(import_ids)
    concurrently({"importer#1": finished.wrap("importer#1", importer),
                  "reader#1": Reader(race_history, project, until=lambda: finished() and done(), imports=import_ids)},
                 timeout=120)

    assert_delays_applied(sync_points, delays)
    check(race_checker, final_state(project, expected_tasks(race_history)), *ASYNC_INVARIANTS)


@pytest.mark.parametrize("delays", ["none", "commit+worker"])
def test_concurrent_sync_and_async_imports_into_one_project(delays, project, user, client_for, sync_points,
                                                            rq_worker_threads, concurrently, race_history,
                                                            race_checker):
    """Six async imports (two files each) and three sync API imports start at once; three workers run the jobs."""
    inject(sync_points, delays)
    record_jobs(sync_points, race_history, RUN_IMPORT, "import-job")
    rq_worker_threads(3)
    import_ids, clients = [], {f"sync#{n}": client_for(user) for n in range(1, 4)}
    importers = {f"async#{n}": async_importer(race_history, f"async#{n}", project, user, [
        (json_upload(f"async-{n}-a.json", 5 * n), 5 * n), (json_upload(f"async-{n}-b.json", 40 + n), 40 + n)],
        import_ids) for n in range(1, 7)}
    importers.update({name: sync_importer(
        race_history, name, lambda name=name: api_import(clients[name], project, f"{name}.json", 25), 25)
        for name in clients})
    finished, done = Finished(len(importers)), imports_final(import_ids)
    actors = {name: finished.wrap(name, actor) for name, actor in importers.items()}
    actors["reader#1"] = Reader(race_history, project, until=lambda: finished() and done(), imports=import_ids)

    concurrently(actors, timeout=120)

    assert_delays_applied(sync_points, delays)
    check(race_checker, final_state(project, expected_tasks(race_history)),
          *ASYNC_INVARIANTS, sync_upload_has_all_its_tasks, acknowledged_imports_are_read_whole)
