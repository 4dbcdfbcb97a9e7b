"""``inject`` works on a plain django-rq app: its keys act on built-in points, in this process and in workers."""
import django_rq
import pytest
import redis

from shop import orders
from shop.models import Receipt

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_enqueue_raises_a_redis_connection_error(inject, product):
    inject("enqueue=fail")

    with pytest.raises(redis.exceptions.ConnectionError, match="racelab injected a failure at 'rq.enqueue'"):
        orders.place_order("F-1", "Fay", [(product.id, 1)])


def test_a_commit_delay_holds_the_commit_and_is_traced(inject, sync_points, use_redis, product):
    inject("commit[tables=shop_order]=1ms")
    orders.place_order_on_commit("C-1", "Cy", [(product.id, 1)])

    delayed = [h for h in sync_points.trace if h.point == "db.commit" and h.actions]
    assert [h.actions for h in delayed] == [("delay 1ms (inject commit[tables=shop_order]=1ms)",)]


def test_a_worker_delay_reaches_a_real_worker_process(inject, remote_sync_points, rq_worker_process, product):
    rq_worker_process(env=inject("worker[job=shop.orders.send_receipt]=300ms"))

    order = orders.place_order_on_commit("W-1", "Wu", [(product.id, 1)])
    remote_sync_points.wait(("rq.job.end", {"job": "shop.orders.send_receipt", "ok": True}), timeout=60)

    taken = next(h for h in remote_sync_points.trace if h.point == "rq.dequeue")
    start = next(h for h in remote_sync_points.trace if h.point == "rq.job.start")  # recorded once the delay is over
    assert start.actor.startswith("rq-process-1:")
    assert start.actions == ("delay 300ms (RACELAB_INJECT worker[job=shop.orders.send_receipt]=300ms)",)
    assert start.time - taken.time >= 0.3 and Receipt.objects.filter(order=order).exists()


def test_a_worker_killed_at_job_start_leaves_the_job_undone(inject, remote_sync_points, rq_worker_process, product,
                                                           eventually):
    workers = rq_worker_process(env=inject("worker=exit"))
    order = orders.place_order_on_commit("K-1", "Kim", [(product.id, 1)])

    eventually(lambda: [h for h in remote_sync_points.trace if h.point == "rq.job.start" and h.actions], 60,
               "the work horse to exit at rq.job.start")
    failed = django_rq.get_queue("mail").failed_job_registry
    eventually(lambda: failed.get_job_ids(), 60, "RQ to record the killed job as failed")
    assert not Receipt.objects.filter(order=order).exists()
    assert all(process.poll() is None for process in workers.processes)  # the horse died, not the worker
