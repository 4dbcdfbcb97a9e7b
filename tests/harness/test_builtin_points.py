"""The built-in points need nothing from the app: every statement, transaction end, enqueue, dequeue and job run."""
from datetime import timedelta

import pytest
from django.db import transaction
from redis import Redis
from rq import Queue, SimpleWorker, Worker

from racelab.harness.django_points import describe_sql
from racelab.harness.rq_points import DeferredEnqueueWarning
from label_studio.projects.models import Project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def add(x, y):
    """A job."""
    return x + y


def hits(controller, name, **where):
    return [h for h in controller.trace if h.point == name and all(h.context.get(k) == v for k, v in where.items())]


def test_a_statement_is_described_by_verb_and_tables():
    assert describe_sql('SELECT "a"."id" FROM "a" INNER JOIN "b" ON ("a"."b_id" = "b"."id") WHERE "a"."x" IN '
                        '(SELECT U0."id" FROM "c" U0) FOR UPDATE') == {
        "verb": "SELECT", "table": "a", "tables": ["a", "b", "c"], "lock": True}
    assert describe_sql('INSERT INTO "t" ("x") VALUES (1)')["table"] == "t"
    assert describe_sql('UPDATE "t" SET "x" = 1')["verb"] == "UPDATE"
    assert describe_sql('COPY "t" ("a", "b") FROM STDIN') == {"verb": "COPY", "table": "t", "tables": ["t"], "lock": False}
    assert describe_sql('COPY "t" TO STDOUT')["verb"] == "SELECT"


def test_every_statement_passes_a_point_before_and_after(sync_points):
    user = UserFactory()
    Project.objects.filter(created_by=user).count()

    before = hits(sync_points, "db.execute", verb="SELECT", table="projects_project")
    after = hits(sync_points, "db.executed", verb="SELECT", table="projects_project")
    assert len(before) == len(after) == 1 and before[0].context["sql"].startswith("SELECT")
    assert sync_points.trace.index(before[0]) < sync_points.trace.index(after[0])


def test_a_write_in_autocommit_is_a_transaction_end(sync_points):
    user = UserFactory()
    sync_points.clear()
    Project.objects.create(title="autocommitted", created_by=user)  # no atomic(): the INSERT commits itself

    names = [h.point for h in sync_points.trace]
    assert names == ["db.execute", "db.commit", "db.executed", "db.on_commit"]
    assert sync_points.trace[1].context == {"alias": "default", "tables": ["projects_project"], "autocommit": True,
                                            "verb": "INSERT", "table": "projects_project"}


def test_a_transaction_commit_names_the_tables_it_wrote(sync_points):
    user = UserFactory()
    with transaction.atomic():
        Project.objects.create(title="one", created_by=user)
        Project.objects.filter(title="one").update(title="two")

    commit = hits(sync_points, "db.commit", autocommit=False)[-1]
    assert commit.context["tables"] == ["projects_project"]
    sync_points.assert_order(("db.commit", {"autocommit": False}), ("db.on_commit", {"autocommit": False}))


def test_a_rollback_passes_its_point_and_commits_nothing(sync_points):
    user = UserFactory()
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            Project.objects.create(title="doomed", created_by=user)
            1 / 0

    assert hits(sync_points, "db.rollback")[-1].context["tables"] == ["projects_project"]
    assert not Project.objects.filter(title="doomed").exists()


def test_sql_run_by_a_callback_passes_no_point(sync_points):
    sync_points.on(("db.execute", {"table": "projects_project"}), lambda context: Project.objects.count())
    UserFactory()
    Project.objects.count()

    assert len(hits(sync_points, "db.execute", table="projects_project")) == 1  # the callback's own did not recurse


def test_enqueue_and_enqueue_in_pass_rq_enqueue(sync_points, race_redis_url):
    queue = Queue("points", connection=Redis.from_url(race_redis_url))
    queue.empty()
    now = queue.enqueue(add, 1, 2)
    later = queue.enqueue_in(timedelta(seconds=60), add, 3, 4)

    enqueued = hits(sync_points, "rq.enqueue")
    assert [h.context["job_id"] for h in enqueued] == [now.id, later.id]
    assert enqueued[0].context["scheduled"] is None and enqueued[1].context["scheduled"]
    assert enqueued[0].context["job"].endswith("test_builtin_points.add")


@pytest.mark.parametrize("worker_class", [SimpleWorker, Worker], ids=["SimpleWorker", "Worker"])
def test_a_worker_passes_dequeue_and_job_start_and_end(sync_points, race_redis_url, worker_class):
    connection_ = Redis.from_url(race_redis_url)
    queue = Queue("points", connection=connection_)
    queue.empty()
    job = queue.enqueue(add, 1, 2)
    # SimpleWorker runs the job here; Worker forks a work horse, whose points this process cannot see.
    worker_class([queue], connection=connection_).work(burst=True, logging_level="WARNING")

    assert hits(sync_points, "rq.dequeue", job_id=job.id) or worker_class is Worker
    if worker_class is SimpleWorker:
        sync_points.assert_order(("rq.dequeue", {"job_id": job.id}), ("rq.job.start", {"job_id": job.id}),
                                 ("rq.job.end", {"job_id": job.id, "ok": True}))
        assert hits(sync_points, "rq.job.start")[-1].context["args"] == [1, 2]


def test_django_rq_deferring_an_enqueue_says_so(sync_points, race_redis_url, settings):
    import django_rq

    settings.RQ = {"COMMIT_MODE": "on_db_commit"}
    queue = django_rq.get_queue("default", connection=Redis.from_url(race_redis_url), commit_mode="on_db_commit")
    user = UserFactory()
    with pytest.warns(DeferredEnqueueWarning, match=r"until the transaction commits .*COMMIT_MODE.*'auto'"):
        with transaction.atomic():
            Project.objects.create(title="x", created_by=user)
            queue.enqueue(add, 1, 2)
            assert not hits(sync_points, "rq.enqueue")

    deferred = hits(sync_points, "rq.deferred")[0]
    assert deferred.context["until"] == "the transaction commits"
    sync_points.assert_order("rq.deferred", ("db.commit", {"autocommit": False}), "rq.enqueue")
