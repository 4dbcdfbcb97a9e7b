"""Bug 1: the receipt job is enqueued inside the order's transaction, so it can run before the order commits."""
import pytest

from shop import orders
from shop.models import Receipt

pytestmark = pytest.mark.django_db(transaction=True)

RECEIPT = "shop.orders.send_receipt"
ENQUEUED, ENDED = ("rq.enqueue", {"job": RECEIPT}), ("rq.job.end", {"job": RECEIPT})
ORDER_COMMIT = ("db.commit", {"tables": ["shop_order", "shop_orderline"]})


@pytest.mark.parametrize("place, fixed", [(orders.place_order, False), (orders.place_order_on_commit, True)],
                         ids=["bug", "fixed"])
def test_the_receipt_job_always_finds_its_order(workers, product, place, fixed):
    sync = workers.controller

    def commit_after_a_sent_receipt_ran(context):
        if sync.passed(ENQUEUED):  # sent before the commit: let the worker run it first
            sync.wait(ENDED)
    sync.on(ORDER_COMMIT, commit_after_a_sent_receipt_ran, label="commit after a sent receipt job ran")
    workers.start(1)

    order = place("A-1", "Ada", [(product.id, 2)])
    sync.wait(ENDED)

    end = next(h for h in sync.trace if h.point == "rq.job.end" and h.context["job"] == RECEIPT)
    missed = not end.context["ok"] and "DoesNotExist" in end.context["error"]
    sync.assert_order(ENQUEUED, ENDED, ORDER_COMMIT) if missed else sync.assert_order(ORDER_COMMIT, ENQUEUED, ENDED)
    assert missed != fixed, (f"{'fixed' if fixed else 'buggy'} place_order on {workers.kind}: the receipt job "
                             f"{'did not find' if missed else 'found'} its order ({end.context})")
    assert Receipt.objects.filter(order=order).exists() == fixed
