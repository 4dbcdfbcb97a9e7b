"""Benchmark what each step of an import costs, in one process: CPU-ms (app, PostgreSQL, Redis) and SQL queries.

Not a test: run it by hand, on an idle machine for figures worth quoting::

    python -m tests.service.bench_import_path --db postgres            # a throw-away PostgreSQL and Redis
    python -m tests.service.bench_import_path --profile batch1000_job  # cProfile of one phase, top functions
    python -m tests.service.bench_import_path --against R7             # RACELAB_FIXES (all) vs only R7, interleaved

Each round runs the steps of issue #16 through Django's test client with token
auth, as a real client sends them: a small async import (its request, then its
job, ``run_import`` called directly — or, with ``--rq-jobs``, taken by an
in-process RQ ``SimpleWorker`` in burst mode, whose start and stop are then in
the figure too), polls of the finished import and of its file list with and without
``If-None-Match``, a 1000-task async import and its job, and 1000-task sync
imports of a JSON file and of a JSON body. It prints the median of each
phase: wall ms, this process's CPU ms (the client's small share included),
the CPU ms of the PostgreSQL backend and of Redis (``/proc/<pid>/schedstat``,
nanoseconds), and the queries Django sent. One build per process: to compare
two builds, run this in each checkout, alternately.
"""
import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time

POLLS = 10  # reads of each poll phase per round


def thread_cpu_ns(pid):
    """Return the CPU nanoseconds every thread of process ``pid`` ran, or 0 when it cannot be read."""
    total = 0
    try:
        for thread in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{thread}/schedstat") as handle:
                total += int(handle.read().split()[0])
    except OSError:
        return 0
    return total


def csv_file(count):
    rows = "".join(f"csv task {n} with a few words of text,{n}\n" for n in range(count))
    return f"racelab-csv-{count}.csv", ("text,n\n" + rows).encode()


def json_tasks(count):
    return [{"text": f"json task {n} with a few words of text", "n": n} for n in range(count)]


class Phases:
    """The import API of one project and user, driven step by step; each step returns what the next one needs."""

    def __init__(self, client, project_id, worker):
        self.client, self.project, self.worker = client, project_id, worker

    def import_file(self, name, content, use_async):
        from django.core.files.uploadedfile import SimpleUploadedFile

        response = self.client.post(f"/api/projects/{self.project}/import?async={str(use_async).lower()}",
                                    {"file": SimpleUploadedFile(name, content)}, format="multipart")
        assert response.status_code == 201, response.content
        return response.json()

    def import_body(self, tasks):
        response = self.client.post(f"/api/projects/{self.project}/import?async=false", tasks, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    def run_job(self, import_id, direct):
        from label_studio.data_import.models import ProjectImport
        from label_studio.data_import.services import run_import

        if direct:
            run_import(import_id)
        else:
            self.worker.work(burst=True, logging_level="WARNING")
        status = ProjectImport.objects.values_list("status", flat=True).get(id=import_id)
        assert status == ProjectImport.COMPLETED, status

    def get(self, path, etag=None):
        headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
        response = self.client.get(path, **headers)
        assert response.status_code == (304 if etag else 200), response.status_code
        return response.headers.get("ETag")


def measure(step, results, name, profiler=None, profiled=None):
    """Run ``step()``, add its costs to ``results[name]``; return its result."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    backend = connection.cursor().connection.info.backend_pid if connection.vendor == "postgresql" else None
    redis_pid = results["_redis_pid"]
    pg_before, redis_before = thread_cpu_ns(backend) if backend else 0, thread_cpu_ns(redis_pid)
    cpu_before, wall_before = time.process_time_ns(), time.perf_counter_ns()
    with CaptureQueriesContext(connection) as queries:
        if profiler is not None and name == profiled:
            profiler.enable()
        result = step()
        if profiler is not None and name == profiled:
            profiler.disable()
    wall, cpu = time.perf_counter_ns() - wall_before, time.process_time_ns() - cpu_before
    pg = (thread_cpu_ns(backend) - pg_before) if backend else 0
    redis = thread_cpu_ns(redis_pid) - redis_before
    results.setdefault(name, []).append((wall / 1e6, cpu / 1e6, pg / 1e6, redis / 1e6, len(queries)))
    results.setdefault("_sql", {})[name] = [query["sql"] for query in queries.captured_queries]
    return result


def run_phases(m, steps, direct_jobs, inputs):
    """Run a round's phases on ``steps`` (a project's :class:`Phases`), each through ``m(step, name)``."""
    small, batch, json_file, body = inputs
    started = m(lambda: steps.import_file(*small, use_async=True), "small_request")
    m(lambda: steps.run_job(started["import"], direct_jobs), "small_job")
    status = f"/api/projects/{steps.project}/imports/{started['import']}"
    uploads = f"/api/projects/{steps.project}/file-uploads?ids={json.dumps(started['file_upload_ids'])}"
    for path, name in ((status, "poll_import"), (uploads, "file_uploads")):
        for _ in range(POLLS):
            etag = m(lambda: steps.get(path), name)
        for _ in range(POLLS):
            m(lambda: steps.get(path, etag), f"{name}_304")
    started = m(lambda: steps.import_file(*batch, use_async=True), "batch1000_request")
    m(lambda: steps.run_job(started["import"], direct_jobs), "batch1000_job")
    m(lambda: steps.import_file(*json_file, use_async=False), "sync1000_file")
    m(lambda: steps.import_body(body), "sync1000_body")


def run(rounds, direct_jobs, profiled, shown=None, against=None):
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient
    from rq import SimpleWorker

    from label_studio.core import jobs
    from label_studio.core.fixes import fixes_from_env, fixes_spec
    from label_studio.projects.models import Project
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    user = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    worker = SimpleWorker([jobs.queue(name) for name in ("high", "default", "low")],
                          connection=jobs.queue("high").connection)
    # With --against, each round runs every phase twice: with the fixes of RACELAB_FIXES (all by default), then with
    # those of ``against`` only (fix_enabled reads the setting on each call), in alternating order, so that both meet
    # the same machine.
    builds = [(f"fixes {fixes_spec(settings.IMPORT_FIXES)}", dict(settings.IMPORT_FIXES))]
    builds += [(f"fixes {against}", fixes_from_env(against))] if against else []
    results = {label: {"_redis_pid": int(os.environ["BENCH_REDIS_PID"])} for label, _ in builds}
    profiler = cProfile.Profile() if profiled else None
    small, batch = csv_file(5), csv_file(1000)
    body = json_tasks(1000)
    json_file = ("racelab-json-1000.json", json.dumps(body).encode())
    for round_number in range(rounds + 1):  # round 0 warms up: imports, plans, connections
        for label, fixes in builds if round_number % 2 == 0 else builds[::-1]:
            settings.IMPORT_FIXES = fixes
            project = Project.objects.create(title=f"bench {round_number}", created_by=user)
            m = (lambda step, name, label=label: measure(step, results[label], name, profiler, profiled)
                 ) if round_number else (lambda step, name: step())
            run_phases(m, Phases(client, project.id, worker), direct_jobs, (small, batch, json_file, body))
    totals = {}
    for label, _ in builds:
        del results[label]["_redis_pid"]
        statements = results[label].pop("_sql")
        print(f"{label}: median of {rounds} rounds ({POLLS} reads a round for polls); "
              f"jobs {'direct' if direct_jobs else 'rq burst'}")
        print(f"{'phase':<20}{'wall ms':>10}{'app cpu':>10}{'pg cpu':>10}{'redis cpu':>10}{'total cpu':>10}{'queries':>9}")
        for name, samples in results[label].items():
            wall, cpu, pg, redis, queries = (statistics.median(column) for column in zip(*samples))
            total = statistics.median(c + p + r for _, c, p, r, _ in samples)
            totals.setdefault(name, []).append(total)
            print(f"{name:<20}{wall:>10.2f}{cpu:>10.2f}{pg:>10.2f}{redis:>10.2f}{total:>10.2f}{queries:>9.0f}")
        if shown:
            print(f"\nThe queries of the last {shown}:", *(sql[:200] for sql in statements[shown]), sep="\n  ")
        print()
    if against:
        print(f"total CPU, {builds[0][0]} / {builds[1][0]}:",
              ", ".join(f"{name} {on / off:.2f}" for name, (on, off) in totals.items() if off))
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        print(f"\ncProfile of {profiled}, {rounds} runs:\n{out.getvalue()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rq-jobs", action="store_true",
                        help="run each job by a burst-mode RQ SimpleWorker (its start and stop included), not directly")
    parser.add_argument("--profile", metavar="PHASE", help="cProfile this phase, e.g. small_request, batch1000_job")
    parser.add_argument("--queries", metavar="PHASE", help="print the SQL of this phase's last run")
    parser.add_argument("--against", metavar="FIXES",
                        help="also run each round with only these fixes on (RACELAB_FIXES' syntax; keep R7, which "
                             "gives the 201 the ids the phases read), interleaved, and print the CPU ratios")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings")
    os.environ.setdefault("RACELAB_LOG_LEVEL", "WARNING")  # no event line per import
    os.environ["DATABASE_CONN_MAX_AGE"] = "3600"  # one PostgreSQL backend for the whole run: its CPU is read by pid
    with contextlib.ExitStack() as stack:
        from racelab.harness.services import start_postgres, start_redis

        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="racelab-bench-"))
        os.environ["RACELAB_HOME"] = os.environ["MEDIA_ROOT"] = home
        redis = stack.enter_context(start_redis())
        os.environ["REDIS_URL"], os.environ["BENCH_REDIS_PID"] = redis.url, str(redis.process.pid)
        if args.db == "postgres":
            os.environ["DATABASE_URL"] = stack.enter_context(start_postgres()).url
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{home}/bench.sqlite3"
        run(args.rounds, not args.rq_jobs, args.profile, args.queries, args.against)


if __name__ == "__main__":
    main()
