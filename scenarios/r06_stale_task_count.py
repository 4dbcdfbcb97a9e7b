"""R6 — a cached ``task_count`` never refreshes (fix flag ``R6``).

Set-up: a project, Redis queues and a threaded RQ worker.
Actors: ``request#1`` starts an async import of one JSON file; the worker runs ``run_import``;
``reader#1`` lists the file uploads twice.
Interleaving: the first read comes after the request committed and before the job created the
tasks (so it counts 0); the second read (``reader#2``) begins after the job has ended.
Invariant (:func:`~scenarios.invariants.listed_count_is_committed_count`): a read begun after the
import finished reports every upload's committed count. Buggy: the first read cached 0 and the
second returns it. Fixed: the count is in the query, exact every time.

Masking: none of the other fixes hides it; R5's ``completed`` status makes it worse (a completed
upload with 0 tasks forever).
"""
import pytest

from scenarios.common import MODES, RUN_IMPORT, list_uploads, record_jobs, uploads_state
from scenarios.invariants import listed_count_is_committed_count
from scenarios.r05_processing_looks_empty import start_import
from tests.factories import ProjectFactory

RACE = "R6"


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r6_stale_task_count(mode, scenario, project, user, sync_points, rq_worker_threads, concurrently):
    count = scenario.rng.randint(2, 9)
    sync_points.order(("import.async_committed", ("reader.list", {"reader": "reader#1"})),
                      (("reader.listed", {"reader": "reader#1"}), "import.tasks_created"))
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(1)

    concurrently({"request#1": start_import(scenario, project, user, count),
                  "reader#1": lambda: list_uploads(scenario.history, "reader#1", project)})
    sync_points.wait(("job.end", {"job": RUN_IMPORT}))
    list_uploads(scenario.history, "reader#2", project)

    scenario.check({"uploads": uploads_state(project)}, listed_count_is_committed_count)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r6_explored(mode, scenario, user, sync_points, rq_worker_threads, race_explorer):
    """From the actors alone: a read during the import caches a count that a read after it returns, with R6 off."""
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(1)

    def run(scheduler):
        project = ProjectFactory(created_by=user)
        scheduler.run({"request#1": start_import(scenario, project, user, scenario.rng.randint(2, 9)),
                       "reader#1": lambda: list_uploads(scenario.history, "reader#1", project)})
        list_uploads(scenario.history, "reader#2", project)
        return {"uploads": uploads_state(project)}

    scenario.explore(race_explorer, run, listed_count_is_committed_count, workers=1)
