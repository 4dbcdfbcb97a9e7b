"""The Django + RQ half of the racelab pytest plugin: databases, Redis, workers, waits.

Registered as the ``racelab-django`` pytest11 entry point. At start-up it picks
the test database (``--db sqlite|postgres|URL``) and starts a throw-away
PostgreSQL and Redis for the run when no URL is given (``racelab.harness.services``),
before pytest-django reads the settings; xdist workers inherit them.
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import pytest

from racelab.harness import django_points
from racelab.harness.services import start_postgres, start_redis

DB_CHOICES = ("sqlite", "postgres")
_started = []


def pytest_addoption(parser):
    group = parser.getgroup("racelab")
    group.addoption("--db", default=os.environ.get("RACELAB_TEST_DB", "sqlite"),
                    help="Database for the tests: sqlite, postgres (a throw-away server for the run) or a URL.")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Start the run's services and set DATABASE_URL before pytest-django loads the settings."""
    django_points.install()
    _warn_on_sync_queues()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller started the services; the environment came with the worker
    namespace = parser.parse_known_args(args)
    db = getattr(namespace, "db", None) or os.environ.get("RACELAB_TEST_DB", "sqlite")
    if db == "postgres":
        service = start_postgres()
        _started.append(service)
        os.environ["DATABASE_URL"] = service.url
    elif db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    elif "://" in db:
        os.environ["DATABASE_URL"] = db
    else:
        raise pytest.UsageError(f"--db {db!r} is not a database; use one of {', '.join(DB_CHOICES)} or a URL.")
    if not os.environ.get("RACELAB_TEST_REDIS_URL"):
        service = start_redis()
        _started.append(service)
        os.environ["RACELAB_TEST_REDIS_URL"] = service.url
    os.environ.pop("REDIS_URL", None)  # tests opt in to Redis with the `use_redis` fixture


def pytest_unconfigure(config):
    while _started:
        _started.pop().stop()


def pytest_report_header(config):
    return [f"racelab: database {os.environ.get('DATABASE_URL', 'sqlite')}, "
            f"redis {os.environ.get('RACELAB_TEST_REDIS_URL')}"]


@pytest.fixture(scope="session")
def redis_url():
    """The URL of this test run's Redis, one database number per xdist worker.

    The plugin starts one ``redis-server`` for the whole run (or uses
    ``RACELAB_TEST_REDIS_URL``); each xdist worker gets its own database number
    so that parallel tests never take each other's jobs. Cheap: no start-up per test.
    """
    base = os.environ["RACELAB_TEST_REDIS_URL"].rsplit("/", 1)[0]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return f"{base}/{1 + int(worker[2:]) % 15}"


@pytest.fixture
def use_redis(redis_url, settings):
    """Point the app's RQ queues at the run's Redis for this test, its RQ keys emptied first.

    Without it, tests run jobs inline after commit (no Redis). With it, jobs go
    to Redis and need a worker: ask for ``rq_worker_thread`` or ``rq_worker_process``.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    stale = list(client.scan_iter("rq:*", count=1000))  # RQ's keys only: remote sync points share this database
    if stale:
        client.delete(*stale)
    settings.REDIS_URL = redis_url
    settings.RQ_QUEUES = {name: {"URL": redis_url, "DEFAULT_TIMEOUT": 600} for name in ("high", "default", "low")}
    return redis_url


def _refuse_wrapping_transaction(fixture):
    from django.db import connection

    if connection.in_atomic_block:
        raise pytest.UsageError(
            f"`{fixture}` needs commits that other threads and processes can see, but this test runs inside a "
            "wrapping transaction (the `db` fixture or a TestCase). Use `transactional_db` or "
            "@pytest.mark.django_db(transaction=True): inside one transaction the commit-versus-dispatch race "
            "cannot be observed.")


class ThreadWorker:
    """An RQ SimpleWorker run in a background thread of the test process, with its own DB connection."""

    def __init__(self, redis_url, queues, name):
        from redis import Redis
        from rq import Queue, SimpleWorker
        from rq.timeouts import TimerDeathPenalty

        connection = Redis.from_url(redis_url)
        self.worker = SimpleWorker([Queue(q, connection=connection) for q in queues], connection=connection, name=name)
        # Signals belong to the main thread: job timeouts by timer, and stop() instead of SIGTERM.
        self.worker.death_penalty_class = TimerDeathPenalty
        self.worker._install_signal_handlers = lambda: None
        # RQ's command pub/sub (stop/kill by message) is not needed here, and each burst's
        # unsubscribe() joins its thread with a 1 s timeout: a second's delay per idle poll.
        self.worker.subscribe = self.worker.unsubscribe = lambda: None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = []

    def _run(self):
        from django.db import connections

        try:
            while not self._stop.is_set():
                if not self.worker.work(burst=True, logging_level="WARNING", with_scheduler=False):
                    self._stop.wait(0.02)  # idle: poll the queues again shortly
        except Exception as exc:  # surfaced by stop()
            self.errors.append(exc)
        finally:
            connections.close_all()

    def start(self):
        self.thread.start()
        return self

    def stop(self, timeout=30):
        self._stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"RQ worker thread {self.thread.name} did not stop within {timeout}s: a job is stuck.")
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def rq_worker_threads(use_redis, transactional_db):
    """A factory of RQ ``SimpleWorker`` threads: ``rq_worker_threads(count=1)`` starts and returns them.

    Each is a real RQ worker on the test's Redis (queues high, default and low)
    in a thread of the test process, with its own DB connection, running one
    job at a time; fast (no process start-up). All are stopped at teardown and
    the first error any of them met is re-raised. Requires ``transactional_db``
    semantics, which it asks for.
    """
    _refuse_wrapping_transaction("rq_worker_threads")
    started = []

    def start(count=1):
        workers = [ThreadWorker(use_redis, ("high", "default", "low"), f"rq-thread-{len(started) + i + 1}").start()
                   for i in range(count)]
        started.extend(workers)
        return workers

    yield start
    errors = []
    for worker in started:
        try:
            worker.stop()
        except Exception as exc:  # stop them all, then raise the first
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def rq_worker_thread(rq_worker_threads):
    """One started ``rq_worker_threads`` worker: the common case, for a test that needs a single worker."""
    return rq_worker_threads(1)[0]


class ProcessWorkers:
    """Real ``rq worker`` processes (django-rq's ``rqworker``) on the test database and Redis."""

    def __init__(self, redis_url, count, extra_env=None):
        from django.conf import settings
        from django.db import connection

        db = connection.settings_dict
        if connection.vendor == "sqlite":
            database_url = f"sqlite:///{db['NAME']}"
        else:
            password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
            database_url = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        # DJANGO_SETTINGS_MODULE comes with os.environ (pytest-django sets it from the ini or --ds).
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                    "RACE_CONTROLLER": "racelab.harness.django_points.install_from_env", **(extra_env or {})}
        self.count, self.processes = count, []
        self.log = tempfile.NamedTemporaryFile(prefix="racelab-rqworker-", suffix=".log", delete=False)

    def log_tail(self, lines=40):
        """Return the last ``lines`` lines the worker processes wrote."""
        with open(self.log.name, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def start(self):
        for _ in range(self.count):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "django", "rqworker", "high", "default", "low", "--with-scheduler"],
                env=self.env, stdout=self.log, stderr=subprocess.STDOUT))
        return self

    def stop(self, timeout=15):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def rq_worker_env():
    """A zero-argument function giving the app's own environment for worker processes (default: none).

    Worker processes get the test database, Redis, ``MEDIA_ROOT`` and the race
    controller by themselves; override this fixture in a conftest to pass the
    test's app settings too (for example feature flags the test changed). It is
    called as each ``rq_worker_process`` batch starts, so it sees the test's
    settings as they are then.
    """
    return dict


@pytest.fixture
def rq_worker_process(use_redis, transactional_db, request, rq_worker_env):
    """A factory of real ``rq worker`` processes: ``rq_worker_process(count=1, env={})`` starts them.

    Each process is django-rq's ``rqworker`` (forking a work horse per job) on
    the test database and the test's Redis, with
    ``RACE_CONTROLLER=racelab.harness.django_points.install_from_env`` so that it obeys
    ``RACELAB_INJECT`` and remote sync points passed in ``env``, plus what
    ``rq_worker_env`` adds. Costs about a second per start-up; all are stopped
    (SIGTERM, then SIGKILL) at teardown.
    """
    _refuse_wrapping_transaction("rq_worker_process")
    started = []

    def start(count=1, env=None):
        workers = ProcessWorkers(use_redis, count, {**rq_worker_env(), **(env or {})}).start()
        started.append(workers)
        return workers

    yield start
    for workers in started:
        workers.stop()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print(f"--- rq worker output ({workers.log.name}) ---\n{workers.log_tail()}")


@pytest.fixture
def inject(request):
    """``inject("commit=200ms,worker=300ms,enqueue=fail")``: inject delays and faults here, and return a worker env.

    Applies the spec (grammar and values in :mod:`racelab.harness.inject`: ``commit``, ``worker``,
    ``enqueue`` or any dotted point, ``[name=value]`` to match a context, a delay, ``fail``,
    ``exit`` or ``drop``) to this test's process through the installed ``sync_points`` or
    ``remote_sync_points`` controller, asking for ``sync_points`` if neither is; each action is
    labelled ``inject <item>`` in the trace. It returns ``{"RACELAB_INJECT": <every spec injected
    so far>, "RACE_CONTROLLER": "racelab.harness.django_points.install_from_env"}`` for
    ``rq_worker_process(env=...)``, so real workers get the same injections. On
    ``remote_sync_points`` the injections stay local to this process (workers take theirs from
    the env, not twice) and the workers' actions land in its merged trace. An ``exit`` never fires
    in the test's own process. It costs what its controller costs; the injections end with it
    at teardown, and a connection a ``drop`` broke is closed then.
    """
    from racelab.harness import inject as injection
    from racelab.harness.syncpoints import BaseSyncPoints
    from racelab.harness.remote import RemoteSyncPoints
    from racelab.harness import race

    specs = []

    def apply(spec):
        controller = race.installed()
        if not isinstance(controller, BaseSyncPoints):
            controller = request.getfixturevalue("sync_points")
        if isinstance(controller, RemoteSyncPoints):
            controller.local_rules += injection.rules(spec, "inject", origin=os.getpid())
        else:
            injection.apply(spec, controller)
        specs.append(spec)
        return {injection.ENV: ",".join(specs), "RACE_CONTROLLER": "racelab.harness.django_points.install_from_env"}

    yield apply
    if any(i.kind == "drop" for spec in specs for i in injection.parse(spec)):
        from django.db import connections

        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()


def wait_until(predicate, timeout=30.0, message="the condition", interval=0.02):
    """Return ``predicate()``'s first truthy value, polling; fail the test naming ``message`` after ``timeout`` s.

    A poll for an outcome, not a way to order actors (use sync points for that).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for {message}; last value: {value!r}.", pytrace=False)
        time.sleep(interval)


@pytest.fixture
def eventually():
    """``eventually(predicate, timeout=30, message=...)``: wait for an outcome with a clear failure, never a hang."""
    return wait_until


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(config, items):
    for item in items:
        if {"rq_worker_thread", "rq_worker_threads", "rq_worker_process"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.django_db(transaction=True))


class InlineQueueWarning(UserWarning):
    """A test enqueued on an RQ queue with ``is_async=False``."""


def _warn_on_sync_queues():
    """Warn whenever a test enqueues on an ``is_async=False`` queue, which hides the commit-versus-dispatch race."""
    from rq.queue import Queue

    original = Queue.enqueue_job

    def enqueue_job(self, job, *args, **kwargs):
        if not self._is_async:
            warnings.warn(InlineQueueWarning(
                f"RQ queue {self.name!r} has is_async=False: job {job.func_name} runs inline, inside the dispatching "
                "transaction, so the commit-versus-dispatch race cannot be observed. Use the rq_worker_thread or "
                "rq_worker_process fixture instead."), stacklevel=2)
        return original(self, job, *args, **kwargs)

    Queue.enqueue_job = enqueue_job
