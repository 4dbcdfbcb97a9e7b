"""The Django half of the plugin: loud warnings where the commit-versus-dispatch race cannot be seen."""
import fakeredis
import pytest
from django.db import transaction
from rq import Queue

from racelab.harness.django_plugin import InlineQueueWarning, _refuse_wrapping_transaction


def noop():
    """A job that does nothing."""


def test_an_inline_queue_warns_that_the_race_is_invisible():
    queue = Queue("high", is_async=False, connection=fakeredis.FakeStrictRedis())

    with pytest.warns(InlineQueueWarning, match="commit-versus-dispatch race cannot be observed"):
        queue.enqueue(noop)


@pytest.mark.django_db(transaction=True)
def test_workers_refuse_to_run_inside_a_wrapping_transaction():
    with transaction.atomic():
        with pytest.raises(pytest.UsageError, match="Use `transactional_db`"):
            _refuse_wrapping_transaction("rq_worker_thread")


@pytest.mark.django_db(transaction=True)
def test_the_commit_race_point_is_built_in(sync_points):
    from label_studio.projects.models import Project
    from tests.factories import UserFactory

    user = UserFactory()
    assert sync_points.passed("db.commit") == 0
    with transaction.atomic():
        Project.objects.create(title="x", created_by=user)
    assert sync_points.passed("db.commit") >= 1
