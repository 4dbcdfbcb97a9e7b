"""One job per async import; the periodic reconciler alone recovers a lost one (fix R8), before it counts as stuck.

The import schedules no watchdog of its own. The reconciler re-dispatches an
import still ``created`` whose job Redis no longer holds, records the new job,
and leaves an import whose job is still queued to that job.
"""
import os
import subprocess
import sys
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from label_studio.data_import import services
from label_studio.data_import.models import ProjectImport
from tests.conftest import json_tasks, named

pytestmark = pytest.mark.django_db(transaction=True)


def import_async(api, project, name="a.json"):
    response = api.post(f"/api/projects/{project.id}/import?async=true", {"file": [named(name, json_tasks(3))]},
                        format="multipart")
    assert response.status_code == 201, response.content
    return ProjectImport.objects.get(id=response.json()["import"])


def jobs_in_redis():
    """Return ``(function name, args)`` of every job queued or scheduled, on every queue."""
    found = []
    for name in ("high", "default", "low"):
        queue = django_rq.get_queue(name)
        ids = queue.get_job_ids() + ScheduledJobRegistry(queue=queue).get_job_ids()
        found += [(job.func_name.rsplit(".", 1)[1], tuple(job.args))
                  for job in queue.job_class.fetch_many(ids, connection=queue.connection) if job]
    return found


def lose_its_job(project_import):
    """Make the import's job lost, as a crash between commit and enqueue would: Redis never had it."""
    django_rq.get_queue("high").connection.delete(f"rq:job:{project_import.job_id}")
    for name in ("high", "default"):
        django_rq.get_queue(name).remove(project_import.job_id)


def age(project_import, seconds):
    ProjectImport.objects.filter(id=project_import.id).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_an_async_import_sends_one_job_and_schedules_none(api, project, use_redis):
    project_import = import_async(api, project)

    assert jobs_in_redis() == [("run_import", (project_import.id,))]


def test_the_reconciler_leaves_a_queued_job_alone_and_sends_nothing(api, project, use_redis):
    project_import = import_async(api, project)  # no worker: its job waits in Redis

    done = services.reconcile(stuck_after=0)

    assert (done["imports"], done["waiting"]) == ([], [project_import.id])
    assert jobs_in_redis() == [("run_import", (project_import.id,))], "a backlog got extra jobs"


def test_the_reconciler_redispatches_a_lost_job_once_and_records_it(api, project, use_redis):
    project_import = import_async(api, project)
    lose_its_job(project_import)

    first, second = services.reconcile(stuck_after=0), services.reconcile(stuck_after=0)

    assert first["imports"] == [project_import.id] and second["waiting"] == [project_import.id]
    recorded = ProjectImport.objects.get(id=project_import.id).job_id
    assert recorded != project_import.job_id and django_rq.get_queue("high").get_job_ids() == [recorded]


def test_a_lost_job_waits_lost_after_not_stuck_after(api, project, settings, use_redis):
    settings.IMPORT_STUCK_AFTER_SECONDS, settings.IMPORT_LOST_AFTER_SECONDS = 600, 120
    project_import = import_async(api, project)
    lose_its_job(project_import)

    age(project_import, 60)
    assert services.reconcile()["imports"] == [], "re-dispatched before IMPORT_LOST_AFTER_SECONDS"
    age(project_import, 121)
    assert services.reconcile()["imports"] == [project_import.id], "not re-dispatched after IMPORT_LOST_AFTER_SECONDS"


def test_a_lost_job_is_recovered_by_a_worker_and_leaves_no_stuck_file(api, project, settings, sync_points,
                                                                       rq_worker_thread, eventually):
    sync_points.fail(("job.enqueue", {"job": "label_studio.data_import.services.run_import"}),
                     ConnectionError("the web process died between its commit and the enqueue"))
    project_import = import_async(api, project)
    sync_points.clear()
    # A process that died there could not record the failed enqueue either: only the lost-job check can find it.
    ProjectImport.objects.filter(id=project_import.id).update(enqueue_failed_at=None, error=None)
    age(project_import, settings.IMPORT_LOST_AFTER_SECONDS + 1)

    assert services.reconcile()["imports"] == [project_import.id]

    eventually(lambda: ProjectImport.objects.get(id=project_import.id).status == "completed", 30,
               f"import {project_import.id} to complete after the reconciler re-dispatched it")
    assert api.get("/api/health/import-flow").json()["metrics"]["stuck_files"] == 0


@pytest.mark.parametrize("lost, interval, stuck", [(120, 60, 180), (600, 60, 600)])
def test_settings_refuse_a_reconciler_slower_than_the_stuck_alert(lost, interval, stuck):
    env = {**os.environ, "IMPORT_LOST_AFTER_SECONDS": str(lost), "IMPORT_RECONCILE_INTERVAL_SECONDS": str(interval),
           "IMPORT_STUCK_AFTER_SECONDS": str(stuck)}
    done = subprocess.run([sys.executable, "-c", "import label_studio.core.settings"], env=env, capture_output=True,
                          text=True, timeout=60)

    assert done.returncode != 0
    assert f"IMPORT_LOST_AFTER_SECONDS ({lost}) + IMPORT_RECONCILE_INTERVAL_SECONDS ({interval}) must stay under " \
           f"IMPORT_STUCK_AFTER_SECONDS ({stuck})" in done.stderr


def scans(plan):
    """Yield ``(node type, relation)`` of every node of an EXPLAIN (FORMAT JSON) plan."""
    yield plan["Node Type"], plan.get("Relation Name")
    for child in plan.get("Plans", ()):
        yield from scans(child)


def test_the_sweep_is_served_by_indexes_with_thousands_of_finished_imports(project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from label_studio.data_import.models import FileUpload

    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's; run with --race-db postgres")
    user = project.created_by
    imports = ProjectImport.objects.bulk_create(
        ProjectImport(project=project, user=user, status=ProjectImport.COMPLETED) for _ in range(5000))
    FileUpload.objects.bulk_create(FileUpload(project=project, user=user, file=f"f-{n}.json", status="completed",
                                              project_import=row) for n, row in enumerate(imports))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    with CaptureQueriesContext(connection) as captured:
        services.reconcile(stuck_after=0)

    statements = [query["sql"] for query in captured.captured_queries]
    assert any("data_import_projectimport" in sql for sql in statements), statements
    with connection.cursor() as cursor:
        for sql in statements:
            if not ("data_import_projectimport" in sql or "data_import_fileupload" in sql):
                continue  # BEGIN/COMMIT, and the sweep's small tables (keys, leftovers)
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            seq = [relation for node, relation in scans(cursor.fetchone()[0][0]["Plan"]) if node == "Seq Scan"]
            assert not seq, f"the reconciler scans {seq} whole in: {sql}"


def test_a_started_job_whose_worker_is_gone_is_not_live(api, project, use_redis):
    from label_studio.core.jobs import live_jobs

    queued, started = import_async(api, project, "a.json"), import_async(api, project, "b.json")
    job = django_rq.get_queue("high").fetch_job(started.job_id)
    job.worker_name = "killed-before-its-claim"  # RQ has no key for it: the worker died holding the job
    job.set_status("started")
    job.save()

    assert live_jobs([queued.job_id, started.job_id]) == {queued.job_id}
    age(started, 10**4)
    assert started.id in services.reconcile()["imports"]


def test_a_queued_job_a_dead_worker_popped_is_not_live(api, project, use_redis):
    from label_studio.core.jobs import live_jobs

    waiting, popped = import_async(api, project, "a.json"), import_async(api, project, "b.json")
    queue = django_rq.get_queue("high")
    queue.connection.lrem(queue.key, 0, popped.job_id)  # a worker took it and died before marking it started

    assert queue.fetch_job(popped.job_id).get_status() == "queued"
    assert live_jobs([waiting.job_id, popped.job_id]) == {waiting.job_id}
    age(popped, 10**4)
    assert services.reconcile()["imports"] == [popped.id]
