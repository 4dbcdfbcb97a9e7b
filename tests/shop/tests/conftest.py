"""The shop's test fixtures: RQ workers of either kind, and the sync points that reach them."""
import dataclasses

import pytest


@dataclasses.dataclass
class Workers:
    """Which workers run the jobs (``kind``), how to start them, and the controller whose rules they obey."""

    kind: str
    controller: object
    start: object


@pytest.fixture(params=["threads", "processes"])
def workers(request):
    """RQ workers as threads of this process (``sync_points``) or real processes (``remote_sync_points``)."""
    if request.param == "threads":
        return Workers("threads", request.getfixturevalue("sync_points"), request.getfixturevalue("rq_worker_threads"))
    return Workers("processes", request.getfixturevalue("remote_sync_points"),
                   request.getfixturevalue("rq_worker_process"))


@pytest.fixture
def product(transactional_db):
    """A product on sale, committed."""
    from shop.models import Product

    return Product.objects.create(name="tea")
