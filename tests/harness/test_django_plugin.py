"""The Django half of the plugin: loud refusals and warnings where the commit-versus-dispatch race cannot be seen."""
import fakeredis
import pytest
from django.db import transaction
from rq import Queue

from racelab.harness.django_plugin import queue_names, refuse_wrapping_transaction
from racelab.harness.rq_points import InlineQueueWarning


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
