"""R12 — a stalled worker's claim is released, and its unit of work runs twice at once (fix flag ``R12``).

Set-up: a project, Redis queues, two threaded RQ workers, one JSON file of a few tasks.
Actors: ``request#1`` starts the async import; worker A runs ``run_import``; ``reconciler#1`` runs
:func:`services.reconcile` (``stuck_after=0`` and ``dead_after=-1``: A's heartbeat counts as too
old, so A is the stalled worker — SIGSTOPped, say — by either test);
worker B runs the ``run_import`` the reconciler re-dispatched.
Interleaving: A claims the upload and is held at ``import.file_upload_parsed``, before its commit;
the reconciler releases A's claim and re-dispatches the import; B claims the upload and commits;
only after B's job ended (``job.end``) does A pass, and commit.
Invariant (:func:`~scenarios.invariants.unit_commits_once`): the file has exactly the tasks sent,
no task twice by content, and the project's total is the sum of its files'. Buggy: both runs
commit — the file has twice its tasks. Fixed: A's commit checks its claim token first (the
fence), finds B's, and commits nothing.
"""
import threading

import pytest

from label_studio.data_import import services
from label_studio.data_import.models import ProjectImport
from label_studio.tasks.models import Task
from scenarios.common import MODES, RUN_IMPORT, json_upload, record_jobs, recover, start_workers, uploads_state
from scenarios.invariants import unit_commits_once
from tests.factories import ProjectFactory

RACE = "R12"
FILES = 3  # per explored import
SWEEPS = 8  # the explored reconciler's sweeps at most: enough to land in the window between a claim and its commit


def first_thread_here():
    """Return a point predicate true for the thread that first reached the point (worker A), false for others."""
    first = []

    def predicate(context):
        if not first:
            first.append(threading.current_thread().name)
        return first[0] == threading.current_thread().name
    predicate.__name__ = "first_thread_here"
    return predicate


def final_state(project, project_import, count):
    return {"project": project.id, "uploads": uploads_state(project),
            "expected_tasks": {fu_id: count for fu_id in project_import.file_upload_ids},
            "task_data": [repr(sorted(data.items())) for data in Task.objects.filter(project=project)
                          .values_list("data", flat=True)]}


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r12_stalled_claim_taken_over(mode, scenario, project, user, sync_points, rq_worker_threads, eventually):
    count = scenario.rng.randint(2, 9)
    sync_points.order((("job.end", {"job": RUN_IMPORT}), ("import.file_upload_parsed", first_thread_here())))
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(2)

    with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
        project_import = services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)])
        op.ok({"import": project_import.id})
    sync_points.wait(("import.file_upload_claimed", {"claimed": True}))
    recover(scenario.history, eventually)  # releases A's claim; B re-runs the import and ends, then A passes
    eventually(lambda: sync_points.passed(("job.end", {"job": RUN_IMPORT})) == 2, 30, "both runs of run_import to end")

    scenario.check(final_state(project, project_import, count), unit_commits_once)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("on", ("threads",))  # worker processes find it too, at twice the cost of a CI run
def test_r12_explored(mode, on, scenario, user, sync_points, race_explorer, request):
    """From the actors alone: an import and a reconciler that finds its worker stalled; two runs commit with R12 off."""
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    start_workers(request, race_explorer, on, 2)

    def run(scheduler):
        project, count, imported = ProjectFactory(created_by=user), scenario.rng.randint(2, 9), []

        def request_():  # three files: three windows between a claim and its commit
            with scenario.history.op("request#1", "async import", {"tasks": count, "files": FILES}) as op:
                imported.append(services.start_async_import(
                    project, user, [json_upload(f"{n}.json", count, scenario.rng) for n in range(FILES)]))
                op.ok({"import": imported[0].id})

        def reconciler():  # sweeps like `rq cron`'s until one stalled claim was released, or the import is final
            for _ in range(SWEEPS):
                with scenario.history.op("reconciler#1", "reconcile") as op:
                    released = op.ok(services.reconcile(stuck_after=0, dead_after=-1)).value["released"]
                if released or imported and ProjectImport.objects.get(id=imported[0].id).status in ProjectImport.FINAL:
                    return
        scheduler.run({"request#1": request_, "reconciler#1": reconciler})  # and the jobs they enqueued, to their end
        return final_state(project, imported[0], count)

    scenario.explore(race_explorer, run, unit_commits_once, workers=2)
