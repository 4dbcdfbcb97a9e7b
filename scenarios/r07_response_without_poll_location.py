"""R7 — the async import response does not say what to poll (fix flag ``R7``).

Set-up: a project, Redis queues and a threaded RQ worker.
Actor: ``client#1`` POSTs one JSON file to ``/api/projects/{id}/import?async=true`` with the DRF
API client and then follows only what the 201 response tells it — ``poll_url`` — until the
import is final; the worker runs ``run_import``.
Interleaving: the job starts only after the client has read the response (``client.responded``
before ``job.start``), so the client always meets an import still in flight.
Invariant (:func:`~scenarios.invariants.client_reaches_completed`): a client that follows only the
response reaches ``completed`` with the right task count. Buggy: the response is only
``{"import": id}``; the client cannot find where to poll. Fixed: it polls ``poll_url`` to
``completed``.
"""
import io
import json

import pytest

from racelab import race_point
from scenarios.common import MODES, RUN_IMPORT
from scenarios.invariants import client_reaches_completed
from tests.factories import ProjectFactory

RACE = "R7"


def follow(client, history, project, count, rng, eventually):
    handle = io.BytesIO(json.dumps([{"data": {"text": f"t{i}-{rng.randrange(10**6)}"}} for i in range(count)]).encode())
    handle.name = "a.json"
    with history.op("client#1", "follow import", {"tasks": count}) as op:
        response = client.post(f"/api/projects/{project.id}/import?async=true", {"file": [handle]}, format="multipart")
        assert response.status_code == 201, response.content
        body = response.json()
        race_point("client.responded", body=body)
        if "poll_url" not in body:
            op.fail(error=f"the response {body} names no poll_url")
            return

        def final():
            polled = client.get(body["poll_url"]).json()
            return polled if polled.get("status") in ("completed", "failed") else None
        polled = eventually(final, 30, f"import {body['import']} to finish at {body['poll_url']}")
        op.ok({"status": polled["status"], "task_count": polled["task_count"]})


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r7_response_without_poll_location(mode, scenario, project, api, sync_points, rq_worker_threads, eventually):
    sync_points.order(("client.responded", ("job.start", {"job": RUN_IMPORT})))
    rq_worker_threads(1)

    follow(api, scenario.history, project, scenario.rng.randint(2, 9), scenario.rng, eventually)
    sync_points.wait(("job.end", {"job": RUN_IMPORT}))

    scenario.check(None, client_reaches_completed)



@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r7_explored(mode, scenario, user, api, rq_worker_threads, race_explorer, eventually):
    """From the actors alone: a client that follows only the response, and a worker; R7 off leaves it lost."""
    rq_worker_threads(1)

    def run(scheduler):
        project = ProjectFactory(created_by=user)
        scheduler.run({"client#1": lambda: follow(api, scenario.history, project, 3, scenario.rng, eventually)})

    scenario.explore(race_explorer, run, client_reaches_completed, workers=1)
