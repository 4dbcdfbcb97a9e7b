"""R5 — no status: "processing" looks like "0 tasks" (fix flag ``R5``).

Set-up: a project, Redis queues and a threaded RQ worker.
Actors: ``request#1`` starts an async import of one JSON file; the worker runs ``run_import``;
``reader#1`` lists the project's file uploads with their status and task count.
Interleaving: the reader reads after the request committed (``import.async_committed``) and
before the job has created the tasks (``import.tasks_created``, held until ``reader.listed``).
Invariant (:func:`~scenarios.invariants.status_tells_processing_from_empty`): every upload reports
one of pending/processing/completed/failed, and ``completed`` only with all its tasks. Buggy: the
upload is ``completed`` from its creation, so the reader sees "completed, 0 tasks". Fixed: it
sees ``pending`` or ``processing``.
"""
import pytest

from label_studio.data_import import services
from scenarios.common import MODES, RUN_IMPORT, json_upload, list_uploads, record_jobs, uploads_state
from scenarios.invariants import status_tells_processing_from_empty
from tests.factories import ProjectFactory

RACE = "R5"


def start_import(scenario, project, user, count):
    def request():
        with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
            op.ok({"import": services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)]).id})
    return request


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r5_processing_looks_empty(mode, scenario, project, user, sync_points, rq_worker_threads, concurrently):
    count = scenario.rng.randint(2, 9)
    sync_points.order(("import.async_committed", "reader.list"), ("reader.listed", "import.tasks_created"))
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(1)

    concurrently({"request#1": start_import(scenario, project, user, count),
                  "reader#1": lambda: list_uploads(scenario.history, "reader#1", project)})
    sync_points.wait(("job.end", {"job": RUN_IMPORT}))

    scenario.check({"uploads": uploads_state(project)}, status_tells_processing_from_empty)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r5_explored(mode, scenario, user, rq_worker_threads, race_explorer):
    """From the actors alone: a reader during the import sees 'completed, 0 tasks' with R5 off."""
    rq_worker_threads(1)

    def run(scheduler):
        project = ProjectFactory(created_by=user)
        scheduler.run({"request#1": start_import(scenario, project, user, scenario.rng.randint(2, 9)),
                       "reader#1": lambda: list_uploads(scenario.history, "reader#1", project)})
        return {"uploads": uploads_state(project)}

    scenario.explore(race_explorer, run, status_tells_processing_from_empty, workers=1)
