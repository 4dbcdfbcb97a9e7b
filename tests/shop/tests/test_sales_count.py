"""Bug 2: a sale is counted by read-modify-write, so two sales counted at once lose one."""
import django_rq
import pytest

from shop import orders

pytestmark = pytest.mark.django_db(transaction=True)

WRITE = ("db.execute", {"verb": "UPDATE", "table": "shop_product"})


@pytest.mark.parametrize("job, fixed", [(orders.record_sale, False), (orders.record_sale_in_the_database, True)],
                         ids=["bug", "fixed"])
def test_two_sales_at_once_count_twice(workers, product, job, fixed):
    sync = workers.controller
    sync.meet(WRITE, parties=2, label="both jobs read before either writes")
    workers.start(2)

    sales = [django_rq.get_queue("orders").enqueue(job, product.id) for _ in range(2)]
    for sale in sales:
        sync.wait(("rq.job.end", {"job_id": sale.id}))

    product.refresh_from_db()
    assert sync.passed(f"{WRITE[0]}:arrived") == 2 and sync.passed(("rq.job.end", {"ok": True})) == 2
    assert (product.sold == 2) == fixed, f"{job.__name__} on {workers.kind}: 2 sales counted as {product.sold}"
