"""Bug 3: an imported order is saved in autocommit before its lines, so a reader can see it without them."""
import django_rq
import pytest

from shop import orders

pytestmark = pytest.mark.django_db(transaction=True)

ORDER_SAVED = ("db.executed", {"verb": "INSERT", "table": "shop_order"})
READ_ORDER = ("db.execute", {"verb": "SELECT", "table": "shop_order"})
READ_LINES = ("db.executed", {"verb": "SELECT", "table": "shop_orderline"})
SAVE_LINE = ("db.execute", {"verb": "INSERT", "table": "shop_orderline"})


@pytest.mark.parametrize("job, fixed", [(orders.import_order, False), (orders.import_order_atomically, True)],
                         ids=["bug", "fixed"])
def test_a_reader_never_sees_an_order_without_its_lines(workers, product, job, fixed):
    sync = workers.controller
    # The reader reads just after the order row is written, and the job writes its lines just after the reader read.
    sync.order((ORDER_SAVED, READ_ORDER), (READ_LINES, SAVE_LINE))
    workers.start(1)

    imported = django_rq.get_queue("orders").enqueue(job, "B-7", "Bob", [(product.id, 1), (product.id, 3)])
    exists, lines = orders.order_summary("B-7")  # the page, in this thread
    sync.wait(("rq.job.end", {"job_id": imported.id, "ok": True}))

    sync.assert_order(ORDER_SAVED, READ_ORDER, READ_LINES, SAVE_LINE)
    half = exists and lines < 2
    assert half != fixed, f"{job.__name__} on {workers.kind}: the reader saw exists={exists} with {lines} line(s)"
    assert orders.order_summary("B-7") == (True, 2)
