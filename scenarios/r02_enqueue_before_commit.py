"""R2 — a job enqueued before the commit (fix flag ``R2``).

Set-up: a project, Redis queues and a threaded RQ worker (``rq_worker_threads``).
Actors: ``request#1`` starts an async import (:func:`services.start_async_import`, the web
request's transaction); the worker runs ``run_import``.
Interleaving: at ``import.async_before_commit`` (still inside the transaction) the request holds
its commit until the worker has started any ``run_import`` already sent (``job.start``). With R2
off the job was sent at dispatch, so the worker starts it before the commit; with R2 on nothing
was sent yet (the enqueue waits for the commit), so the request commits at once.
Invariant (:func:`~scenarios.invariants.job_never_precedes_its_commit`, over the sync-points
trace): ``run_import(id)`` never starts before the request that enqueued it passed its COMMIT
(``db.on_commit``), and never finds its row missing. On PostgreSQL the buggy job typically finds
no row (``import.job_row_missing``); on SQLite fix R9's conditional claim is a write that queues
behind the request's ``BEGIN IMMEDIATE`` and then finds the row — R9 masks the missing row there,
not the early start, which the trace still shows.
"""
import pytest

from label_studio.data_import import services
from scenarios.common import MODES, RUN_IMPORT, WORKERS, import_state, json_upload, start_workers, trace_state
from scenarios.invariants import job_never_precedes_its_commit
from tests.factories import ProjectFactory

RACE = "R2"


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r2_enqueue_before_commit(mode, scenario, project, user, sync_points, rq_worker_threads, concurrently):
    count = scenario.rng.randint(2, 8)
    sent = ("job.enqueue", {"job": RUN_IMPORT})
    started = ("job.start", {"job": RUN_IMPORT})

    def hold_commit_for_a_sent_job(context):
        if sync_points.passed(sent):
            sync_points.wait(started)
    sync_points.on("import.async_before_commit", hold_commit_for_a_sent_job, label="commit after a sent job starts")

    def request():
        with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
            project_import = services.start_async_import(project, user, [json_upload("a.json", count, scenario.rng)])
            op.ok({"import": project_import.id})
    rq_worker_threads(1)
    concurrently({"request#1": request})

    sync_points.wait(("job.end", {"job": RUN_IMPORT}))
    scenario.check({"trace": trace_state(sync_points)}, job_never_precedes_its_commit)
    if not scenario.buggy:
        assert import_state(scenario.history.ops[-1].value["import"])["status"] == "completed"


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("on", WORKERS)
def test_r2_explored(mode, on, scenario, user, race_explorer, request):
    """From the actors alone: the explorer finds the job that starts before its commit with R2 off, nothing with it on.

    The worker is a thread, or a real ``rq worker`` process whose job the scheduler controls through Redis.
    """
    start_workers(request, race_explorer, on, 1)

    def run(scheduler):
        project, count = ProjectFactory(created_by=user), scenario.rng.randint(2, 8)

        def request_():
            with scenario.history.op("request#1", "async import", {"tasks": count}) as op:
                upload = json_upload("a.json", count, scenario.rng)
                op.ok({"import": services.start_async_import(project, user, [upload]).id})
        scheduler.run({"request#1": request_})
        return {"trace": scheduler.trace}

    scenario.explore(race_explorer, run, job_never_precedes_its_commit, workers=1)
