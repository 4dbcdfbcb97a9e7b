"""R4 — a delayed dispatch that does not wait for the commit (fix flag ``R4``).

Set-up: a project and Redis queues (no worker needed: what matters is what reaches Redis).
Actor: ``request#1`` starts an async import; inside its transaction the service dispatches
``run_import`` (on commit, fix R2) and, with fix R8, the delayed watchdog ``reconcile_import``
(``start_job_async_or_sync(..., in_seconds=IMPORT_STUCK_AFTER_SECONDS)``).
Interleaving: the request fails at ``import.async_before_commit`` (sync points ``fail``), after
both dispatches, so its transaction rolls back.
Invariant (:func:`~scenarios.invariants.no_job_for_a_rolled_back_transaction`): no job, delayed
or not, is queued or scheduled in Redis for the rolled-back import. Buggy: django-rq's hole — the
delayed watchdog went out at once and sits in the scheduled registry for an import that never
existed. Fixed: nothing is sent.

Masking: the watchdog exists only with fix R8 on; with R8 off this scenario has no delayed
dispatch to catch, so R4 is only observable together with R8.
"""
import django_rq
import pytest
from rq.registry import ScheduledJobRegistry

from label_studio.data_import import services
from scenarios.common import MODES, json_upload
from scenarios.invariants import no_job_for_a_rolled_back_transaction
from tests.factories import ProjectFactory

RACE = "R4"


class RequestAborted(RuntimeError):
    """The request failed after dispatching its jobs, inside its transaction."""


def sent_jobs():
    """Return every job queued or scheduled in Redis, with its function and arguments."""
    jobs = []
    for name in ("high", "default", "low"):
        queue = django_rq.get_queue(name)
        scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
        for where, ids in (("queued", queue.get_job_ids()), ("scheduled", scheduled)):
            for job in queue.job_class.fetch_many(ids, connection=queue.connection):
                if job is not None:
                    jobs.append({"func": job.func_name.rsplit(".", 1)[1], "args": list(job.args), "where": where})
    return jobs


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r4_dispatch_without_commit_hook(mode, scenario, project, user, sync_points, use_redis):
    sync_points.fail("import.async_before_commit", RequestAborted("the request failed before its commit"))

    with scenario.history.op("request#1", "async import", reraise=False):
        services.start_async_import(project, user, [json_upload("a.json", scenario.rng.randint(1, 5), scenario.rng)])

    scenario.check({"sent_jobs": sent_jobs()}, no_job_for_a_rolled_back_transaction)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r4_explored(mode, scenario, user, use_redis, race_explorer):
    """From the actor and a dropped connection as an explored fault: a delayed job sent for a rolled-back import."""
    def run(scheduler):
        project = ProjectFactory(created_by=user)

        def request():
            with scenario.history.op("request#1", "async import", reraise=False):
                services.start_async_import(project, user, [json_upload("a.json", 3, scenario.rng)])
        scheduler.run({"request#1": request})
        return {"sent_jobs": sent_jobs()}

    scenario.explore(race_explorer, run, no_job_for_a_rolled_back_transaction, faults=("drop",))
