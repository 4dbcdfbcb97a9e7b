"""Claims and real ``rq worker`` processes (fix R12): a dead worker's claim is released in seconds through its RQ
heartbeat, a live slow one keeps it, and a stopped one that resumes after its claim was re-run commits nothing.

Each worker is held inside its job, after its claim and before its commit, by a remote sync point. The
reconciler runs with the default stuck timeout (600 s): only the dead-worker path can release a claim here.
"""
import os
import signal
import time

import pytest

from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from racelab import race_point
from scenarios.common import RUN_IMPORT, json_upload, pdf_bytes

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT, DEAD_AFTER = 0.5, 3  # seconds: workers started below take them from the test's settings
HELD = "import.file_upload_parsed"  # after the claim, before the unit's transaction
BODY_HELD = "import.job_claimed"  # a JSON-body import: after the job's claim of the import, before its transaction


@pytest.fixture
def fast_heartbeats(settings):
    settings.WORKER_HEARTBEAT_SECONDS, settings.IMPORT_WORKER_DEAD_AFTER_SECONDS = HEARTBEAT, DEAD_AFTER


def start_held_import(project, user, remote_sync_points, rq_worker_process, eventually, until, body=False):
    """Start a 5-task import on one simple worker process held until the point ``until``; return both.

    A file import is held at HELD, after its file's claim; a JSON-``body`` import at BODY_HELD.
    """
    held = BODY_HELD if body else HELD
    remote_sync_points.order((until, held))
    worker = rq_worker_process(1, worker_class="simple").processes[0]
    if body:
        project_import = services.start_async_import(project, user, [], [{"data": {"text": f"body task {n}"}}
                                                                         for n in range(5)])
    else:
        project_import = services.start_async_import(project, user, [json_upload("a.json", 5)])
    eventually(lambda: any(wait.point == held for wait in remote_sync_points.waiting()), 30,
               f"the worker to claim the import and wait at {held}")
    return project_import, worker


def reconciled_within(seconds, done, unit_id):
    """Run the reconciler until ``unit_id`` is in its ``done`` list; return the seconds it took, or fail after ``seconds``.

    ``released`` lists file uploads whose claim was released, ``imports`` the imports sent again.
    """
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if unit_id in services.reconcile()[done]:
            return time.monotonic() - began
        time.sleep(0.2)  # sleep-ok: the reconciler's sweeps, bounded by the deadline (rq cron's would be 5 s)
    pytest.fail(f"The reconciler did not put {unit_id} in its {done!r} within {seconds} s of its worker's death "
                f"(heartbeat dead after {DEAD_AFTER} s); the stuck timeout is not the way.")


def rerun_of(project_import, body):
    """Return what the reconciler lists when it runs the held unit again: a file's released claim, or a body's import."""
    return ("imports", project_import.id) if body else ("released", project_import.file_upload_ids[0])


@pytest.mark.parametrize("body", (False, True), ids=("file", "json-body"))
def test_a_killed_worker_s_unit_is_run_again_within_seconds(
        body, project, user, fast_heartbeats, remote_sync_points, rq_worker_process, eventually):
    project_import, worker = start_held_import(project, user, remote_sync_points, rq_worker_process, eventually,
                                               "test.worker_killed", body=body)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    race_point("test.worker_killed")  # a worker started now passes the held point at once
    rq_worker_process(1, worker_class="simple")

    took = reconciled_within(DEAD_AFTER + 5, *rerun_of(project_import, body))
    eventually(lambda: ProjectImport.objects.get(id=project_import.id).status in ProjectImport.FINAL, 15,
               "the re-dispatched import to finish")

    assert took < DEAD_AFTER + 5
    assert ProjectImport.objects.get(id=project_import.id).status == "completed"
    assert Task.objects.filter(project=project).count() == 5


@pytest.mark.parametrize("body", (False, True), ids=("file", "json-body"))
def test_a_stopped_worker_that_resumes_after_its_unit_was_run_again_commits_nothing(
        body, project, user, fast_heartbeats, remote_sync_points, rq_worker_process, eventually):
    project_import, stopped = start_held_import(project, user, remote_sync_points, rq_worker_process, eventually,
                                                "test.worker_stopped", body=body)
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        race_point("test.worker_stopped")  # frees the held point: for the next worker now, for this one once it resumes
        reconciled_within(DEAD_AFTER + 5, *rerun_of(project_import, body))
        rq_worker_process(1, worker_class="simple")
        eventually(lambda: ProjectImport.objects.get(id=project_import.id).status in ProjectImport.FINAL, 15,
                   "the re-run of the import to finish")
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    eventually(lambda: remote_sync_points.passed(("job.end", {"job": RUN_IMPORT})) == 2, 15,
               "the resumed worker's run_import to end")

    assert Task.objects.filter(project=project).count() == 5, "the resumed worker committed its unit a second time"
    assert ProjectImport.objects.values_list("status", "task_count").get(id=project_import.id) == ("completed", 5)
    statuses = FileUpload.objects.filter(id__in=project_import.file_upload_ids).values_list("status", flat=True)
    assert list(statuses) == ["completed"] * len(project_import.file_upload_ids)  # none for a JSON body


def test_a_slow_live_worker_keeps_its_claim(project, user, fast_heartbeats, remote_sync_points, rq_worker_process,
                                            eventually):
    project_import, _ = start_held_import(project, user, remote_sync_points, rq_worker_process, eventually,
                                          "test.slow_job_may_go")
    file_upload_id = project_import.file_upload_ids[0]
    deadline = time.monotonic() + 2 * DEAD_AFTER
    while time.monotonic() < deadline:
        assert services.reconcile()["released"] == [], (
            f"The reconciler released the claim of a live worker, held {2 * DEAD_AFTER} s in its job but beating")
        time.sleep(0.2)  # sleep-ok: the live worker outlasts DEAD_AFTER twice; the loop is bounded by the deadline
    race_point("test.slow_job_may_go")
    eventually(lambda: ProjectImport.objects.get(id=project_import.id).status in ProjectImport.FINAL, 15,
               "the slow worker's import to finish")

    assert FileUpload.objects.get(id=file_upload_id).status == "completed"
    assert Task.objects.filter(project=project).count() == 5


def blocked_in_dequeue(connection):
    """Return whether a client of the test's Redis database waits there for a job (its BLMOVE or BLPOP is pending):
    the one rq worker of the test."""
    db = str(connection.connection_pool.connection_kwargs.get("db", 0))
    return any(str(client.get("db")) == db and client.get("cmd") in ("blmove", "blpop")
               for client in connection.client_list())


def test_a_pdf_page_job_that_a_stopped_worker_took_is_sent_again_and_only_that_one(
        project, user, fast_heartbeats, rq_worker_process, eventually):
    """Redis hands the next job to a worker blocked in its dequeue even when that worker is stopped: the job
    leaves the queue and waits, unseen, in the stopped process. Found by `make load-faults` (pause-worker)."""
    import django_rq

    stopped = rq_worker_process(1, queues=["default"], worker_class="simple").processes[0]
    connection = django_rq.get_queue("default").connection
    eventually(lambda: blocked_in_dequeue(connection), 30, "the worker to wait for a job")
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        project_import = services.start_async_import(project, user, [services.Upload("doc.pdf", pdf_bytes(8))])
        django_rq.get_queue("high").empty()  # the test runs the import's own job, so that only page jobs queue
        services.run_import(project_import.id)
        pages = list(FileUpload.objects.filter(parent__isnull=False, project=project).order_by("id"))
        jobs = sorted({page.job_id for page in pages}, key=lambda job_id: min(p.id for p in pages if p.job_id == job_id))
        eventually(lambda: django_rq.get_queue("default").count == len(jobs) - 1, 15,
                   "the stopped worker to take the first page job")

        sent = services.reconcile(lost_after=0)["pages"]
        assert sent == [page.id for page in pages if page.job_id == jobs[0]], "only the taken job's pages are lost"
        assert services.reconcile(lost_after=0)["pages"] == [], "a page job sent again is live: not sent twice"
        rq_worker_process(1, worker_class="simple")
        eventually(lambda: ProjectImport.objects.get(id=project_import.id).status in ProjectImport.FINAL, 30,
                   "the PDF import to finish without the stopped worker")
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    stale = django_rq.get_queue("default").fetch_job(jobs[0])
    eventually(lambda: stale.get_status(refresh=True) == "finished", 30, "the resumed worker to run its stale job")

    assert ProjectImport.objects.get(id=project_import.id).status == "completed"
    assert Task.objects.filter(project=project).count() == 8, "a page was imported twice or not at all"
