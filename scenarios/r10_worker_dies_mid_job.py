"""R10 — a worker dies mid-job (fix flag ``R10``).

Set-up: a project, Redis queues, a threaded RQ worker, and one JSON file of more than
``BATCH_SIZE`` (500) tasks.
Actors: ``request#1`` starts the async import; the worker runs ``run_import``; ``reader#1`` lists
the uploads after the death; ``reconciler#1`` runs :func:`services.reconcile` (``stuck_after=0``)
and the worker runs what it re-dispatches.
Interleaving: the worker dies (a :class:`~scenarios.common.WorkerKilled` BaseException, so no
``except Exception`` clean-up runs — like a SIGKILL) at ``import.tasks_created`` once it has
inserted more than ``BATCH_SIZE`` tasks of the upload: with R10 off that is inside the second
batch's transaction, after the first batch committed; with R10 on it is inside the one
transaction. The reader and the reconciler run after the job has ended (``job.end``).
Invariants (:func:`~scenarios.invariants.no_partial_tasks_visible`,
:func:`~scenarios.invariants.no_import_stuck_after_recovery`,
:func:`~scenarios.invariants.completed_imports_have_all_tasks`): no partial tasks are visible, and
after recovery the upload is ``completed`` with all its tasks (or ``failed``). Buggy: 500 tasks
visible and the upload ``processing`` forever, also after the reconciler. Fixed: nothing visible,
the stale claim released, the re-run completes the upload.
"""
import pytest

from label_studio.data_import import services
from scenarios.common import (MODES, RUN_IMPORT, WORKERS, WorkerKilled, json_upload, list_uploads, record_jobs, recover,
                              recovery_state, start_workers)
from scenarios.invariants import completed_imports_have_all_tasks, no_import_stuck_after_recovery, no_partial_tasks_visible
from tests.factories import ProjectFactory

RACE = "R10"


def kill_once_past_a_batch(sync_points):
    """Kill the job the first time it has inserted more than BATCH_SIZE tasks of one upload."""
    inserted, killed = {}, []

    def maybe_kill(context):
        key = context["file_upload_id"]
        inserted[key] = inserted.get(key, 0) + context["tasks"]
        if inserted[key] > services.BATCH_SIZE and not killed:
            killed.append(key)
            raise WorkerKilled(f"worker killed after inserting {inserted[key]} tasks of file upload {key}")
    sync_points.on("import.tasks_created", maybe_kill, label="kill the worker past one batch")


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r10_worker_dies_mid_job(mode, scenario, project, user, sync_points, rq_worker_threads, eventually):
    count = services.BATCH_SIZE + scenario.rng.randint(1, 40)
    kill_once_past_a_batch(sync_points)
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(1)

    with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
        project_import = services.start_async_import(project, user, [json_upload("big.json", count, scenario.rng)])
        op.ok({"import": project_import.id})
    sync_points.wait(("job.end", {"job": RUN_IMPORT, "ok": False}))
    list_uploads(scenario.history, "reader#1", project)

    recover(scenario.history, eventually)

    state = recovery_state(project, project_import, count)
    scenario.check(state, no_partial_tasks_visible, no_import_stuck_after_recovery, completed_imports_have_all_tasks)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("on", WORKERS)
def test_r10_explored(mode, on, scenario, user, sync_points, race_explorer, eventually, request):
    """From the actors and a worker killed at an explored point: partial tasks, and a stuck upload, with R10 off.

    On a worker process the kill is its work horse's ``os._exit``; on a thread, its connections close first.
    """
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    start_workers(request, race_explorer, on, 1)

    def run(scheduler):
        project, count, imported = ProjectFactory(created_by=user), services.BATCH_SIZE + scenario.rng.randint(1, 40), []

        def request_():
            with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
                imported.append(services.start_async_import(project, user, [json_upload("big.json", count, scenario.rng)]))
                op.ok({"import": imported[0].id})
        scheduler.run({"request#1": request_})
        list_uploads(scenario.history, "reader#1", project)
        recover(scenario.history, eventually)
        return recovery_state(project, imported[0], count)

    scenario.explore(race_explorer, run, no_partial_tasks_visible, no_import_stuck_after_recovery,
                     completed_imports_have_all_tasks, faults=("kill",), workers=1)
