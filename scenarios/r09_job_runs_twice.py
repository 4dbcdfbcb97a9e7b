"""R9 — the same ``run_import`` job runs twice (fix flag ``R9``).

Set-up: a project, Redis queues and two threaded RQ workers.
Actors: ``request#1`` starts an async import (its ``run_import`` is sent on commit); then the
same job is dispatched again under another job id, as a retry, the reconciler or a double
enqueue would; each worker runs one of them.
Interleaving: the duplicate is taken by a worker (``rq.dequeue`` of its job id) only after the
first run has claimed the import (``import.job_claimed``).
Invariant (:func:`~scenarios.invariants.completed_imports_have_all_tasks`): a completed upload has
exactly its file's tasks. Buggy: both runs claim the upload and create its tasks — twice as many.
Fixed: the second run's conditional claim finds the import claimed and does nothing.
"""
import uuid

import pytest

from label_studio.data_import import services
from scenarios.common import MODES, RUN_IMPORT, json_upload, record_jobs, uploads_state
from scenarios.invariants import completed_imports_have_all_tasks
from tests.factories import ProjectFactory

RACE = "R9"


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r9_job_runs_twice(mode, scenario, project, user, sync_points, rq_worker_threads, eventually):
    count = scenario.rng.randint(2, 9)
    duplicate = f"duplicate-{uuid.uuid4().hex}"
    sync_points.order(("import.job_claimed", ("rq.dequeue", {"job_id": duplicate})))
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(2)

    with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
        project_import = services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)])
        op.ok({"import": project_import.id})
    services.start_job_async_or_sync(services.run_import, project_import.id, queue_name="high", job_id=duplicate)
    eventually(lambda: sync_points.passed(("job.end", {"job": RUN_IMPORT})) == 2, 30, "both runs of run_import to end")

    state = {"uploads": uploads_state(project), "expected_tasks": {fu: count for fu in project_import.file_upload_ids}}
    scenario.check(state, completed_imports_have_all_tasks)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r9_explored(mode, scenario, user, sync_points, rq_worker_threads, race_explorer):
    """From the actors alone: an import and a retry of its job, two workers; duplicate tasks with R9 off."""
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(2)

    def run(scheduler):
        project, count, imported = ProjectFactory(created_by=user), scenario.rng.randint(2, 9), []

        def request_and_retry():
            imported.append(services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)]))
            services.start_job_async_or_sync(services.run_import, imported[0].id, queue_name="high")
        scheduler.run({"request#1": request_and_retry})
        return {"uploads": uploads_state(project), "expected_tasks": {fu: count for fu in imported[0].file_upload_ids}}

    scenario.explore(race_explorer, run, completed_imports_have_all_tasks, workers=2)
