"""Self-tests of the ``inject`` fixture on the real flow: commit delay and drop, enqueue failure, worker delay and exit."""
import logging
import os

import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError, connection, transaction

from label_studio.data_import import services
from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.projects.models import Project
from label_studio.tasks.models import Task
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

RUN_IMPORT = "label_studio.data_import.services.run_import"
TASKS = b'[{"text": "a"}, {"text": "b"}, {"text": "c"}]'


def hits(controller, name):
    return [hit for hit in controller.trace if hit.point == name]


def test_a_commit_delay_is_traced_and_the_commit_follows_it(sync_points, inject):
    user = UserFactory()
    env = inject("commit=20ms")

    with transaction.atomic():
        Project.objects.create(title="delayed", created_by=user)

    assert env == {"RACELAB_INJECT": "commit=20ms"}
    assert hits(sync_points, "db.commit")[-1].actions == ("delay 20ms (inject commit=20ms)",)
    # db.on_commit is passed once COMMIT returned: the commit happened after the delay, not before.
    sync_points.assert_order(("db.commit", {"alias": "default"}), "db.on_commit")
    assert Project.objects.filter(title="delayed").exists()


def test_a_context_filter_picks_the_commit_it_delays(sync_points, inject):
    user = UserFactory()
    inject("commit[alias=replica]=1s, commit[alias=default]=1ms")

    with transaction.atomic():
        Project.objects.create(title="filtered", created_by=user)

    assert hits(sync_points, "db.commit")[-1].actions == ("delay 1ms (inject commit[alias=default]=1ms)",)


def test_a_dropped_connection_fails_the_commit_and_commits_nothing(sync_points, inject):
    user = UserFactory()
    before = Project.objects.count()
    inject("commit=drop")

    # The driver's error, wrapped by Django: OperationalError (psycopg 3), InterfaceError (psycopg2),
    # ProgrammingError (sqlite3).
    with pytest.raises((InterfaceError, OperationalError, ProgrammingError)):
        with transaction.atomic():
            Project.objects.create(title="lost", created_by=user)

    assert hits(sync_points, "db.commit")[-1].actions == (
        "call racelab.harness.inject:drop_db_connection (inject commit=drop)",)
    assert sync_points.passed(("db.on_commit", {"autocommit": False})) == 0
    sync_points.clear()
    connection.close()  # a fresh connection, as a new request would get
    assert Project.objects.count() == before
    assert not Project.objects.filter(title="lost").exists()


def test_an_enqueue_failure_leaves_the_import_created(use_redis, inject, caplog):
    user = UserFactory()
    project = ProjectFactory(created_by=user)
    inject("enqueue=fail")

    with caplog.at_level(logging.INFO, logger="racelab.events"):
        project_import = services.start_async_import(project, user, [services.Upload("a.json", TASKS)])

    assert ProjectImport.objects.get(id=project_import.id).status == ProjectImport.CREATED
    failed = [r for r in caplog.records if getattr(r, "event", None) == "job.enqueue_failed"]
    assert failed and "InjectedRedisDown" in failed[0].fields["error"]
    assert not [r for r in caplog.records if getattr(r, "event", None) == "job.enqueued"]


def test_a_worker_delay_applies_in_a_real_worker_process(remote_sync_points, inject, rq_worker_process):
    user = UserFactory()
    project = ProjectFactory(created_by=user)
    workers = rq_worker_process(env=inject(f"worker[job={RUN_IMPORT}]=30ms"))
    # The Redis URL carries the throw-away server's password: never on a command line (`ps` shows those to all).
    assert not [p.args for p in workers.processes if workers.redis_url in " ".join(map(str, p.args))]

    project_import = services.start_async_import(project, user, [services.Upload("a.json", TASKS)])

    # ``import.finished`` is passed after the import's final commit: waiting on the status alone could
    # read the trace before the worker has recorded it.
    remote_sync_points.wait(("job.end", {"job": RUN_IMPORT}), timeout=60)
    assert ProjectImport.objects.get(id=project_import.id).status == ProjectImport.COMPLETED
    start = [hit for hit in hits(remote_sync_points, "rq.job.start") if hit.context["job"] == RUN_IMPORT]
    assert start[0].actions == (f"delay 30ms (RACELAB_INJECT worker[job={RUN_IMPORT}]=30ms)",)
    assert not start[0].actor.startswith(f"{os.getpid()}:")  # the worker's, not ours
    remote_sync_points.assert_order("import.async_committed", ("job.start", {"job": RUN_IMPORT}), "import.finished")


@pytest.mark.parametrize("spec, point, import_status, upload_status", [
    ("worker=exit", "rq.job.start", ProjectImport.CREATED, FileUpload.PENDING),  # killed before the job claims
    ("import.file_upload_claimed=exit", "import.file_upload_claimed",
     ProjectImport.IN_PROGRESS, FileUpload.PROCESSING),  # killed mid-job: the R10 story
])
def test_a_worker_killed_at_a_point_is_recovered_by_the_reconciler(
        remote_sync_points, inject, rq_worker_process, eventually, spec, point, import_status, upload_status):
    user = UserFactory()
    project = ProjectFactory(created_by=user)
    doomed = rq_worker_process(env=inject(spec))
    project_import = services.start_async_import(project, user, [services.Upload("a.json", TASKS)])
    file_upload_id = project_import.file_upload_ids[0]

    killed = eventually(lambda: [h for h in hits(remote_sync_points, point) if h.actions], 60,
                        f"a worker process to exit at {point}")
    assert killed[0].actions == (f"exit 1 (RACELAB_INJECT {spec})",)
    doomed.stop()
    assert ProjectImport.objects.get(id=project_import.id).status == import_status
    assert FileUpload.objects.get(id=file_upload_id).status == upload_status
    assert Task.objects.filter(project=project).count() == 0

    assert services.reconcile(stuck_after=0)["imports"] == [project_import.id]
    rq_worker_process()  # a healthy worker: no RACELAB_INJECT

    eventually(lambda: ProjectImport.objects.get(id=project_import.id).status == ProjectImport.COMPLETED,
               60, f"import {project_import.id} to complete after the reconciler")
    assert FileUpload.objects.get(id=file_upload_id).status == FileUpload.COMPLETED
    assert Task.objects.filter(project=project).count() == 3
