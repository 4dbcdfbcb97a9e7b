"""The Django half of the plugin: loud refusals and warnings where the commit-versus-dispatch race cannot be seen."""
import fakeredis
import pytest
from django.db import transaction
from redis import Redis
from rq import Queue, Worker

from racelab.harness.django_plugin import queue_names, refuse_wrapping_transaction
from racelab.harness.rq_points import InlineQueueWarning
from racelab.harness.syncpoints import SyncPointTimeout
from racelab.harness.workers import ThreadWorker


def noop():
    """A job that does nothing."""


def test_an_inline_queue_warns_that_the_race_is_invisible(sync_points):
    queue = Queue("high", is_async=False, connection=fakeredis.FakeStrictRedis())

    with pytest.warns(InlineQueueWarning, match="commit-versus-dispatch race cannot be observed"):
        queue.enqueue(noop)


@pytest.mark.django_db(transaction=True)
def test_workers_refuse_to_run_inside_a_wrapping_transaction():
    with transaction.atomic():
        with pytest.raises(pytest.UsageError, match="Use `transactional_db`"):
            refuse_wrapping_transaction("rq_worker_thread")


def test_queue_names_come_from_the_apps_rq_queues_or_the_caller(settings):
    settings.RQ_QUEUES = {"mail": {}, "orders": {}}
    assert queue_names() == ["mail", "orders"]
    assert queue_names(["orders"]) == ["orders"]
    del settings.RQ_QUEUES
    with pytest.raises(pytest.UsageError, match=r"rq_worker_thread\(queues=\['default'\]\)"):
        queue_names()


@pytest.mark.django_db(transaction=True)
def test_a_thread_worker_keeps_the_error_that_lost_its_job(use_redis, sync_points):
    worker = ThreadWorker(use_redis, ["default"], "rq-thread-broken")

    def prepare_execution(job):
        raise ConnectionError("Redis went away as the job was prepared")
    worker.worker.prepare_execution = prepare_execution  # RQ's loop logs this and drops the job it had taken
    worker.start()
    Queue("default", connection=Redis.from_url(use_redis)).enqueue(noop)

    with pytest.raises(SyncPointTimeout) as info:
        sync_points.wait("rq.dequeue", timeout=1)
    assert "'rq-thread-broken'" in str(info.value)
    assert "dropped the job it held): ConnectionError('Redis went away as the job was prepared')" in str(info.value)
    with pytest.raises(ConnectionError, match="Redis went away"):
        worker.stop()
    sync_points.timeouts.clear()  # the timeout above was this test's to raise


@pytest.mark.django_db(transaction=True)
def test_worker_processes_are_registered_with_rq_when_their_start_returns(use_redis, rq_worker_process):
    rq_worker_process(2, worker_class="simple")
    assert sorted(w.name for w in Worker.all(connection=Redis.from_url(use_redis))) == ["rq-process-1", "rq-process-2"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_that_cannot_start_says_so_at_once(rq_worker_process):
    with pytest.raises(RuntimeError, match=r"rq-process-1 exited; their output:(.|\n)*no_such_settings"):
        rq_worker_process(1, env={"DJANGO_SETTINGS_MODULE": "no_such_settings"})
