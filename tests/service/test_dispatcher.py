"""The dispatcher: enqueue on commit (delayed enqueues too), nothing for a rollback, job id always returned."""
import pytest
from django.db import transaction
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from label_studio.core.jobs import start_job_async_or_sync

ran = []


def record(value):
    ran.append(value)


@pytest.fixture
def queue(use_redis):
    return Queue("default", connection=Redis.from_url(use_redis))


@pytest.fixture(autouse=True)
def _clear():
    ran.clear()


def scheduled(queue):
    return ScheduledJobRegistry(queue=queue).get_job_ids()


@pytest.mark.django_db(transaction=True)
def test_enqueue_happens_after_commit_not_before(queue):
    with transaction.atomic():
        job_id = start_job_async_or_sync(record, 1)
        assert queue.job_ids == [], "the job reached Redis before its transaction committed"
    assert queue.job_ids == [job_id]


@pytest.mark.django_db(transaction=True)
def test_rollback_enqueues_nothing_even_from_a_nested_atomic(queue):
    with transaction.atomic():
        start_job_async_or_sync(record, 1)
        try:
            with transaction.atomic():
                start_job_async_or_sync(record, 2)
                raise ValueError("inner block fails")
        except ValueError:
            pass
    assert len(queue.job_ids) == 1
    with transaction.atomic():
        start_job_async_or_sync(record, 3)
        transaction.set_rollback(True)
    assert len(queue.job_ids) == 1


@pytest.mark.django_db(transaction=True)
def test_delayed_enqueue_waits_for_commit(queue):
    with transaction.atomic():
        job_id = start_job_async_or_sync(record, 1, in_seconds=60)
        assert scheduled(queue) == []
    assert scheduled(queue) == [job_id]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_job_is_sent_at_once(queue):
    job_id = start_job_async_or_sync(record, 1)
    assert queue.job_ids == [job_id]


@pytest.mark.django_db(transaction=True)
def test_fix_r2_off_enqueues_before_commit(queue, settings):
    settings.IMPORT_FIXES = {**settings.IMPORT_FIXES, "R2": False}
    with transaction.atomic():
        start_job_async_or_sync(record, 1)
        assert len(queue.job_ids) == 1


@pytest.mark.django_db(transaction=True)
def test_fix_r4_off_sends_delayed_jobs_before_commit_and_for_rollbacks(queue, settings):
    settings.IMPORT_FIXES = {**settings.IMPORT_FIXES, "R4": False}
    with transaction.atomic():
        start_job_async_or_sync(record, 1, in_seconds=60)
        transaction.set_rollback(True)
    assert len(scheduled(queue)) == 1


@pytest.mark.django_db(transaction=True)
def test_without_redis_the_job_runs_inline_after_commit():
    with transaction.atomic():
        start_job_async_or_sync(record, 1)
        assert ran == []
    assert ran == [1]
    with transaction.atomic():
        start_job_async_or_sync(record, 2)
        transaction.set_rollback(True)
    assert ran == [1]


@pytest.mark.django_db(transaction=True)
def test_redis_down_is_logged_not_raised(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RQ_QUEUES = {name: {"URL": settings.REDIS_URL} for name in ("high", "default", "low")}
    with transaction.atomic():
        job_id = start_job_async_or_sync(record, 1)
    assert job_id
    assert any(getattr(r, "event", "") == "job.enqueue_failed" for r in caplog.records)
