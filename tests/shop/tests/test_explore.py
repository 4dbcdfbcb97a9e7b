"""Find the shop's three bugs from its actors alone: no ordering, no delay; racelab's explorer and a budget.

This is how a team explores its own code: give the actors (what a request or a page does), the
workers, and a check of the outcome; the explorer picks who runs at every built-in point.
"""
import itertools

import django_rq
import pytest

from shop import orders
from shop.models import Product

pytestmark = pytest.mark.django_db(transaction=True)
numbers = itertools.count(1)


def failed_jobs(scheduler):
    """Return one sentence per job of the run that raised, read from the scheduler's trace."""
    return [f"{step['actor']}'s {step['context']['job']} raised {step['context']['error']}"
            for step in scheduler.trace if step["point"] == "rq.job.end" and not step["context"]["ok"]]


@pytest.mark.parametrize("place, fixed", [(orders.place_order, False), (orders.place_order_on_commit, True)],
                         ids=["bug", "fixed"])
def test_the_explorer_finds_the_receipt_job_that_runs_before_its_order(workers, product, race_explorer, place, fixed):
    workers.start(1, **({"env": race_explorer.worker_env()} if workers.kind == "processes" else {}))

    def run(scheduler):
        scheduler.run({"checkout": lambda: place(f"X-{next(numbers)}", "Eve", [(product.id, 1)])})
        return failed_jobs(scheduler)

    result = race_explorer.explore(run, workers=1)
    assert (result.found_at is None) == fixed, result.finding.report() if result.finding else result


@pytest.mark.parametrize("job, fixed", [(orders.record_sale, False), (orders.record_sale_in_the_database, True)],
                         ids=["bug", "fixed"])
def test_the_explorer_finds_the_lost_sale(workers, race_explorer, job, fixed):
    workers.start(2, **({"env": race_explorer.worker_env()} if workers.kind == "processes" else {}))

    def run(scheduler):
        product = Product.objects.create(name="tea")
        queue = django_rq.get_queue("orders")
        scheduler.run({"till#1": lambda: queue.enqueue(job, product.id), "till#2": lambda: queue.enqueue(job, product.id)})
        product.refresh_from_db()
        return [f"2 sales counted as {product.sold}"] if product.sold != 2 else []

    result = race_explorer.explore(run, workers=2)
    assert (result.found_at is None) == fixed, result.finding.report() if result.finding else result


@pytest.mark.parametrize("job, fixed", [(orders.import_order, False), (orders.import_order_atomically, True)],
                         ids=["bug", "fixed"])
def test_the_explorer_finds_an_order_shown_without_its_lines(workers, product, race_explorer, job, fixed):
    workers.start(1, **({"env": race_explorer.worker_env()} if workers.kind == "processes" else {}))

    def run(scheduler):
        number, seen = f"I-{next(numbers)}", []
        lines = [(product.id, 1), (product.id, 3)]
        scheduler.run({"export": lambda: django_rq.get_queue("orders").enqueue(job, number, "Bob", lines),
                       "page": lambda: seen.append(orders.order_summary(number))})
        exists, count = seen[0]
        return [f"the page showed order {number} with {count} of its 2 lines"] if exists and count < 2 else []

    result = race_explorer.explore(run, workers=1)
    assert (result.found_at is None) == fixed, result.finding.report() if result.finding else result
