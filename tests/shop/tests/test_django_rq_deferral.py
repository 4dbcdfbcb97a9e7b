"""When django-rq holds an enqueue back, the trace and a warning say so, and which setting does it."""
import django_rq
import pytest
from django.db import transaction

from racelab.harness.rq_points import DeferredEnqueueWarning
from shop import orders

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deferred_enqueue_is_named_with_its_setting(sync_points, settings, use_redis, product):
    # django-rq 4 reads COMMIT_MODE; django-rq 3 only AUTOCOMMIT (False: hold jobs until the request ends).
    settings.RQ = {"COMMIT_MODE": "on_db_commit", "AUTOCOMMIT": False}

    with pytest.warns(DeferredEnqueueWarning, match=r"held back the enqueue of shop\.orders\.send_receipt .*"
                                                    r"RQ\[.(COMMIT_MODE|AUTOCOMMIT).\].*set RQ = \{'COMMIT_MODE': 'auto'\}"):
        with transaction.atomic():
            orders.place_order("D-1", "Dee", [(product.id, 1)])

    deferred = [h for h in sync_points.trace if h.point == "rq.deferred"]
    assert len(deferred) == 1 and deferred[0].context["queue"] == "mail"
    assert deferred[0].context["until"] in ("the transaction commits", "the request ends")
    django_rq.get_queue("mail").empty()
