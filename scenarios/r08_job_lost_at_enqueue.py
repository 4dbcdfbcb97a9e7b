"""R8 — a job lost between the commit and the enqueue (fix flag ``R8``; buggy mode turns off R10 too).

Set-up: a project, Redis queues and a threaded RQ worker.
Actors: ``request#1`` starts an async import whose queues are pointed at a closed port just before
its commit (Redis "down" at commit: the on-commit enqueue of ``run_import`` fails; the import records it);
``reconciler#1`` then runs :func:`services.reconcile` with ``stuck_after=0`` on the repaired
queues; the worker runs whatever it re-dispatches.
Interleaving: the enqueue fails at the request's commit by configuration; the reconciler runs
after the request returned, and the check waits for every import it re-dispatched to finish.
Invariant (:func:`~scenarios.invariants.no_import_stuck_after_recovery` and
:func:`~scenarios.invariants.completed_imports_have_all_tasks`): after recovery every import and
upload is ``completed`` or ``failed``, with all its tasks. Buggy: the import stays ``created``.

Masking: ``reconcile`` re-dispatches ``created`` imports when R8 *or* R10 is on (R10's stale-claim
recovery re-dispatches through the same branch), so R8 off alone is hidden by R10; buggy mode
turns off the pair, and R8 is the one this scenario targets.
"""
import pytest

from label_studio.data_import import services
from scenarios.common import MODES, RUN_IMPORT, json_upload, record_jobs, recover, recovery_state
from scenarios.invariants import completed_imports_have_all_tasks, no_import_stuck_after_recovery
from tests.factories import ProjectFactory

RACE = "R8"


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r8_job_lost_at_enqueue(mode, scenario, project, user, settings, sync_points, rq_worker_threads, eventually):
    if scenario.buggy:
        scenario.turn_off("R10")
    count = scenario.rng.randint(2, 9)
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(1)

    good_queues = settings.RQ_QUEUES
    down = {name: {"URL": "redis://127.0.0.1:1/0"} for name in good_queues}
    # Redis dies after the request found it up (else the request is a 503 and nothing is stored), before the commit.
    sync_points.on("import.async_before_commit", lambda context: setattr(settings, "RQ_QUEUES", down), label="Redis dies")
    with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
        project_import = services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)])
        op.ok({"import": project_import.id})
    settings.RQ_QUEUES = good_queues

    recover(scenario.history, eventually)

    state = recovery_state(project, project_import, count)
    scenario.check(state, no_import_stuck_after_recovery, completed_imports_have_all_tasks)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r8_explored(mode, scenario, user, sync_points, rq_worker_threads, race_explorer, eventually):
    """From the actor and a failed enqueue as an explored fault: an import stuck for good with R8 off."""
    if scenario.buggy:
        scenario.turn_off("R10")
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")
    rq_worker_threads(1)

    def run(scheduler):
        project, count = ProjectFactory(created_by=user), scenario.rng.randint(2, 9)
        imported = []

        def request():
            with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
                imported.append(services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)]))
                op.ok({"import": imported[0].id})
        scheduler.run({"request#1": request})
        recover(scenario.history, eventually)
        return recovery_state(project, imported[0], count)

    scenario.explore(race_explorer, run, no_import_stuck_after_recovery, completed_imports_have_all_tasks,
                     faults=("enqueue",), workers=1)
