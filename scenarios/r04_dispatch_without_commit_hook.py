"""R4 — a delayed dispatch that does not wait for the commit (fix flag ``R4``).

Set-up: a project and Redis queues (no worker needed: what matters is what reaches Redis).
Actor: ``request#1`` opens a transaction, schedules a delayed job in it
(``start_job_async_or_sync(reconcile_all, in_seconds=IMPORT_STUCK_AFTER_SECONDS)``, as an app's own
watchdog would) and starts an async import, which dispatches ``run_import`` (on commit, fix R2).
Interleaving: the request fails at ``import.async_before_commit`` (sync points ``fail``), after
both dispatches, so its transaction rolls back.
Invariant (:func:`~scenarios.invariants.no_job_for_a_rolled_back_transaction`): no job, delayed
or not, is queued or scheduled in Redis for the rolled-back import. Buggy: django-rq's hole — the
delayed job went out at once and sits in the scheduled registry for an import that never
existed. Fixed: nothing is sent.

The import flow itself schedules no delayed job (its per-import watchdog gave way to the periodic
reconciler, issue #16), so the actor brings the delayed dispatch that fix R4 is about.
"""
import django_rq
import pytest
from django.conf import settings
from django.db import transaction
from rq.registry import ScheduledJobRegistry

from label_studio.core.jobs import start_job_async_or_sync
from label_studio.data_import import services
from scenarios.common import MODES, json_upload
from scenarios.invariants import no_job_for_a_rolled_back_transaction
from tests.factories import ProjectFactory

RACE = "R4"


class RequestAborted(RuntimeError):
    """The request failed after dispatching its jobs, inside its transaction."""


def import_with_a_delayed_job(project, user, upload):
    """Schedule a delayed job and start an async import, in one transaction; return the ProjectImport."""
    with transaction.atomic():
        start_job_async_or_sync(services.reconcile_all, queue_name="low",
                                in_seconds=settings.IMPORT_STUCK_AFTER_SECONDS)
        return services.start_async_import(project, user, [upload])


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
        import_with_a_delayed_job(project, user, json_upload("a.json", scenario.rng.randint(1, 5), scenario.rng))

    scenario.check({"sent_jobs": sent_jobs()}, no_job_for_a_rolled_back_transaction)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r4_explored(mode, scenario, user, use_redis, race_explorer):
    """From the actor and a dropped connection as an explored fault: a delayed job sent for a rolled-back import."""
    def run(scheduler):
        project = ProjectFactory(created_by=user)

        def request():
            with scenario.history.op("request#1", "async import", reraise=False):
                import_with_a_delayed_job(project, user, json_upload("a.json", 3, scenario.rng))
        scheduler.run({"request#1": request})
        return {"sent_jobs": sent_jobs()}

    scenario.explore(race_explorer, run, no_job_for_a_rolled_back_transaction, faults=("drop",))
