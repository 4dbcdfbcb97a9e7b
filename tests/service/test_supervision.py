"""``served_app`` supervises what it starts: killed workers, web workers, Redis and ``rq cron`` come back, and imports go on.

One served stack for the module (gunicorn with 2 web workers, 2 ``rq worker`` processes,
``rq cron`` reconciling every second, a throw-away Redis with its append-only file) on the run's
database kind (``--race-db``); each test kills part of it with SIGKILL and waits, bounded, for it
to come back. About a minute in all.
"""
import os
import re
import shutil
import signal
import time

import psutil
import pytest
import redis
import requests
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry

from racelab.harness.django_plugin import wait_until
from racelab.serving import served_app
from tests.conftest import csv_rows

WORKERS = 2
RECOVERY_S = 30  # the bound: back within 30 s of the fault


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """The served stack, with ``log_path`` (serve's output) and ``project_id`` (a project of its user) added."""
    db = request.config.getoption("race_db")
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log_path, "w") as log, served_app(
            db=db if db in ("sqlite", "postgres") else "postgres", workers=WORKERS, web_workers=2, log=log,
            extra_env={"IMPORT_RECONCILE_INTERVAL_SECONDS": "1", "IMPORT_LOST_AFTER_SECONDS": "1",
                       "IMPORT_STUCK_AFTER_SECONDS": "3"}) as app:
        app.log_path = log_path
        app.project_id = api(app, "post", "/api/projects", json={"title": "supervised"}).json()["id"]
        yield app


def api(app, method, path, **kwargs):
    response = requests.request(method, app.url + path, headers={"Authorization": f"Token {app.token}"},
                                timeout=30, **kwargs)
    assert response.status_code < 500 or response.status_code == 503, \
        f"{response.status_code} {response.text[:300]}; serve's log:\n{serve_log(app)[-3000:]}"
    return response


def recovered(app, predicate, what, timeout=RECOVERY_S):
    """Return ``predicate()``'s first truthy value within ``timeout`` s; else fail naming ``what``, with serve's log."""
    try:
        return wait_until(predicate, timeout=timeout, message=what)
    except pytest.fail.Exception as exc:
        pytest.fail(f"{exc}\nserve's log ends with:\n{serve_log(app)[-3000:]}", pytrace=False)


def serve_log(app):
    return app.log_path.read_text()


def rq(app):
    return redis.Redis.from_url(app.env["REDIS_URL"], socket_timeout=5)


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pid):
    """True once ``pid`` is reaped: no process, not even a zombie."""
    return not psutil.pid_exists(pid)


def worker_processes(app):
    return app.processes[1:1 + WORKERS]


def live_rq_workers(app):
    """Return the pids of the workers registered in RQ whose process runs."""
    try:
        return sorted(w.pid for w in Worker.all(connection=rq(app)) if w.pid and running(w.pid))
    except redis.RedisError:
        return []


def wait_for_pool(app, killed):
    """Wait until RQ has WORKERS live registered workers, none of them one of ``killed``; return their pids."""
    return recovered(app, lambda: (pids := live_rq_workers(app)) and len(pids) == WORKERS
                     and not set(pids) & set(killed) and pids, f"{WORKERS} live rq workers registered in RQ, "
                     f"none of them the killed {killed}")


def import_csv(app, rows=3):
    """Send an async CSV import; return the response."""
    return api(app, "post", f"/api/projects/{app.project_id}/import?async=true",
               files={"file": ("rows.csv", csv_rows(rows))})


def wait_completed(app, response, rows=3):
    body = response.json()
    assert response.status_code == 201, body
    final = recovered(app, lambda: (poll := api(app, "get", body["poll_url"]).json())["status"] in ("completed", "failed")
                      and poll, f"import {body['import']} to complete")
    assert (final["status"], final["task_count"]) == ("completed", rows), final


def test_a_killed_worker_is_reaped_and_replaced_by_a_new_one_registered_in_rq(served):
    victim = worker_processes(served)[0].pid
    os.kill(victim, signal.SIGKILL)

    wait_for_pool(served, killed=[victim])

    wait_until(lambda: gone(victim), timeout=5, message=f"the killed worker {victim} to be reaped (no zombie)")
    assert re.search(rf"rq worker \d \(pid {victim}\) was killed by SIGKILL", serve_log(served)), serve_log(served)
    wait_completed(served, import_csv(served))


def test_killing_every_worker_brings_the_whole_pool_back(served):
    victims = [process.pid for process in worker_processes(served)]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    wait_for_pool(served, killed=victims)

    assert all(gone(pid) for pid in victims)
    wait_completed(served, import_csv(served))


def test_a_killed_web_worker_is_replaced_by_gunicorn(served):
    master = psutil.Process(served.processes[0].pid)
    web_workers = {child.pid for child in master.children()}
    victim = min(web_workers)
    os.kill(victim, signal.SIGKILL)

    recovered(served, lambda: len(now := {c.pid for c in master.children() if running(c.pid)}) == len(web_workers)
              and victim not in now, f"gunicorn to replace its killed worker {victim}")
    wait_completed(served, import_csv(served))


def test_a_killed_redis_comes_back_with_its_queued_jobs_and_the_reconciler_runs_again(served):
    parked = Queue("parked", connection=rq(served)).enqueue("os.getcwd")  # a queue no worker takes: it stays queued
    old_redis = served.redis.process.pid
    os.kill(old_redis, signal.SIGKILL)
    killed_at = time.time()

    recovered(served, lambda: "Redis is back on port" in serve_log(served),
              f"serve to start Redis again on port {served.redis.port}")

    assert served.redis.process.pid != old_redis and _pings(served)
    assert parked.id in Queue("parked", connection=rq(served)).job_ids, "the queued job was lost with Redis"
    recovered(served, lambda: _reconciled_since(served, killed_at),
              "rq cron to schedule reconcile_all again and a worker to run it")
    recovered(served, lambda: running(served.processes[-1].pid), "rq cron to run again")
    wait_for_pool(served, killed=[])
    wait_completed(served, import_csv(served))


def test_a_redis_that_cannot_start_again_is_reported_loudly_and_imports_resume_once_it_does(served):
    aof = os.path.join(served.redis.tmpdir, "appendonly.aof")
    kept = aof + ".kept"
    shutil.copy(aof, kept)
    with open(aof + ".bad", "w") as bad:
        bad.write("not an append-only file\n")
    os.replace(aof + ".bad", aof)  # the running server keeps writing its old file; a restart reads this one
    os.kill(served.redis.process.pid, signal.SIGKILL)

    recovered(served, lambda: "REDIS IS DOWN" in serve_log(served), "serve to say that Redis is down")
    health = requests.get(served.url + "/api/health/import-flow", timeout=30)
    assert health.status_code == 503, health.text[:300]
    assert [p["check"] for p in health.json()["problems"]][:1] == ["redis"], health.json()
    during = import_csv(served)
    assert during.status_code == 503 and during.headers.get("Retry-After"), during.text[:300]  # not a 500, not a 201

    os.replace(kept, aof)
    recovered(served, lambda: _pings(served), "Redis to start again once its file is readable")
    wait_for_pool(served, killed=[])
    wait_completed(served, import_csv(served))
    recovered(served, lambda: requests.get(served.url + "/api/health/import-flow", timeout=30).status_code == 200,
              "the health endpoint to be healthy again")


def _pings(app):
    try:
        return rq(app).ping()
    except redis.RedisError:
        return False


def _reconciled_since(app, since):
    connection = rq(app)
    jobs = Job.fetch_many(FinishedJobRegistry("low", connection=connection).get_job_ids(), connection=connection)
    return any(job and job.func_name.endswith("reconcile_all") and job.ended_at and job.ended_at.timestamp() > since
               for job in jobs)
