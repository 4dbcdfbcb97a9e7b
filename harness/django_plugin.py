"""The Django + RQ half of the racelab pytest plugin: the test database, Redis queues, workers, injection.

Registered as the ``racelab-django`` pytest11 entry point. Installed, it changes no pytest run
by itself: it starts nothing and touches no setting until a test asks for one of its fixtures or
the run passes ``--race-db``. Then:

- ``--race-db sqlite|postgres|URL`` points the app's default database there for the run
  (:mod:`racelab.harness.databases`; ``postgres`` starts a throw-away server, shared by the
  xdist workers), whatever the app's settings read;
- ``use_redis`` points the app's ``RQ_QUEUES`` at the run's Redis (``race_redis_url``);
- ``rq_worker_thread(s)`` and ``rq_worker_process`` run real RQ workers on the queues the app
  names in ``RQ_QUEUES`` (or those a test gives), on the test database, obeying the test's
  sync points; ``inject`` widens race windows at the built-in points of any app.
"""
from __future__ import annotations

import os
import time

import pytest

from racelab.harness import databases
from racelab.harness.fixtures_django import refuse_in_memory_sqlite
from racelab.harness.fixtures_core import add_section
from racelab.harness.workers import ProcessWorkers, ThreadWorker, rq_state

WORKER_FIXTURES = {"rq_worker_thread", "rq_worker_threads", "rq_worker_process"}
_STARTED = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("racelab")
    group.addoption("--race-db", default=None, metavar="sqlite|postgres|URL",
                    help="Run on this database instead of the settings' own: sqlite (a file), postgres (a throw-away "
                         "server racelab starts) or a postgres:// or sqlite:/// URL (default: the settings' own).")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Resolve ``--race-db`` once (the controller) and point every process's default database at it."""
    config.stash[_STARTED] = []
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        os.environ.pop(databases.ENV, None)  # never a parent run's choice
        choice = config.getoption("race_db")
        if choice:
            try:
                os.environ[databases.ENV] = databases.resolve(choice, config.stash[_STARTED])
            except databases.DatabaseChoiceError as exc:
                raise pytest.UsageError(str(exc)) from None
    url = databases.chosen()
    if url:
        from django.conf import settings

        if not settings.configured:
            raise pytest.UsageError("--race-db needs the app's Django settings: set DJANGO_SETTINGS_MODULE, or pass "
                                    "--ds SETTINGS (pytest-django), or drop --race-db.")
        databases.apply(url)


def pytest_unconfigure(config):
    for service in reversed(config.stash.get(_STARTED, [])):
        service.stop()


def pytest_report_header(config):
    url = databases.chosen()
    return [f"racelab: database {url}"] if url else []


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WORKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture
def use_redis(race_redis_url, settings):
    """Point every queue of the app's ``RQ_QUEUES`` at the run's Redis for this test, RQ's keys emptied first.

    Without it the app's queues stay as its settings say. With it, jobs go to the run's Redis
    (``race_redis_url``) and need a worker: ask for ``rq_worker_thread`` or ``rq_worker_process``.
    Each queue keeps its other options (timeouts, classes). Returns the Redis URL. Cheap: one
    SCAN and DELETE.
    """
    import redis

    client = redis.Redis.from_url(race_redis_url)
    stale = list(client.scan_iter("rq:*", count=1000))  # RQ's keys only: remote sync points share this database
    if stale:
        client.delete(*stale)
    queues = getattr(settings, "RQ_QUEUES", None) or {}
    settings.RQ_QUEUES = {name: {key: value for key, value in config.items()
                                 if key not in ("HOST", "PORT", "DB", "PASSWORD", "UNIX_SOCKET_PATH", "USE_REDIS_CACHE")}
                          | {"URL": race_redis_url} for name, config in queues.items()}
    return race_redis_url


def queue_names(queues=None):
    """Return the queues a worker takes: ``queues`` if given, else the app's ``RQ_QUEUES`` names, in order."""
    from django.conf import settings

    names = list(queues or getattr(settings, "RQ_QUEUES", None) or ())
    if not names:
        raise pytest.UsageError(
            "racelab cannot tell which queues your workers take: the settings have no RQ_QUEUES (django-rq). Pass "
            "them, e.g. rq_worker_thread(queues=['default']) or rq_worker_process(queues=['default', 'mail']).")
    return names


def refuse_wrapping_transaction(fixture):
    """Raise UsageError when the test runs inside one transaction, where other actors see no commit."""
    from django.db import connection

    if connection.in_atomic_block:
        raise pytest.UsageError(
            f"`{fixture}` needs commits that other threads and processes can see, but this test runs inside a "
            "wrapping transaction (the `db` fixture or a TestCase). Use `transactional_db` or "
            "@pytest.mark.django_db(transaction=True): inside one transaction the commit-versus-dispatch race "
            "cannot be observed.")
    refuse_in_memory_sqlite(f"`{fixture}` workers")


@pytest.fixture
def rq_worker_threads(use_redis, transactional_db, request, _racelab_points):
    """A factory of RQ ``SimpleWorker`` threads: ``rq_worker_threads(count=1, queues=None)`` starts and returns them.

    Each is a real RQ worker on the test's Redis, taking the app's ``RQ_QUEUES`` in order (or
    ``queues``), in a thread of the test process with its own DB connection, running one job at
    a time; fast (no process start-up), and ``sync_points`` reach it. All are stopped at teardown
    and the first error any of them met is re-raised. Requires ``transactional_db`` semantics,
    which it asks for; a SQLite test database in memory is refused (use ``--race-db sqlite``).
    """
    refuse_wrapping_transaction("rq_worker_threads")
    started = []

    def start(count=1, queues=None):
        names = queue_names(queues)
        if not started:
            add_section(request, "rq", lambda: rq_state(use_redis, names))
        workers = [ThreadWorker(use_redis, names, f"rq-thread-{len(started) + i + 1}").start() for i in range(count)]
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
    """One started ``rq_worker_threads`` worker on the app's queues: the common case, for a test that needs one."""
    return rq_worker_threads(1)[0]


@pytest.fixture
def rq_worker_env():
    """A zero-argument function giving extra environment for worker processes (default: none).

    Worker processes get the test database, its Redis, every setting the test changed and the
    race controller by themselves. Override this fixture in a conftest when the app reads
    something from the environment that a test changes; it is called as each
    ``rq_worker_process`` batch starts.
    """
    return dict


@pytest.fixture
def rq_worker_process(use_redis, transactional_db, request, rq_worker_env, tmp_path_factory, _racelab_points):
    """A factory of real ``rq worker`` processes: ``rq_worker_process(count=1, env=None, queues=None, worker_class="fork")``.

    Each is ``python -m racelab.harness.rqworker``: RQ's forking ``Worker`` (a work horse per job,
    as in production; ``worker_class="simple"`` runs jobs in the worker itself) on the app's
    ``RQ_QUEUES`` in order (or ``queues``) and the test's Redis. It runs on the test database and
    with every setting the test changed (:mod:`racelab.harness.overlay`), imports what the test
    imports, and obeys ``remote_sync_points`` and the ``RACELAB_INJECT`` of ``env``, plus what
    ``rq_worker_env`` adds. The call returns once RQ lists every one as a worker (about half a
    second; a process that exits first is a RuntimeError with its output). All are stopped
    (SIGTERM, then SIGKILL) at teardown, and their logs (under the test's temp dir) are printed
    when the test fails.
    """
    refuse_wrapping_transaction("rq_worker_process")
    started = []
    log_dir = tmp_path_factory.mktemp("rq-workers")

    def start(count=1, env=None, queues=None, worker_class="fork"):
        if not started:
            add_section(request, "rq", lambda: rq_state(use_redis, queue_names(queues)))
        workers = ProcessWorkers(use_redis, queue_names(queues), count, log_dir, {**rq_worker_env(), **(env or {})},
                                 worker_class).start(first=sum(w.count for w in started) + 1)
        started.append(workers)
        return workers

    yield start
    for workers in started:
        workers.stop()
    from racelab.harness.fixtures_core import REPORTS

    if any(report.failed for report in request.node.stash.get(REPORTS, {}).values()):
        for workers in started:
            print(f"--- rq worker output ({log_dir}) ---\n{workers.log_tail()}")


@pytest.fixture
def inject(request, _racelab_points):
    """``inject("commit=200ms,worker=300ms,enqueue=fail")``: inject delays and faults here, and return a worker env.

    Applies the spec (grammar in :mod:`racelab.harness.inject`: ``commit`` (``db.commit``),
    ``worker`` (``rq.job.start``), ``enqueue`` (``rq.enqueue``) — built-in points of any app — or
    any dotted point, ``[name=value]`` to match a context, a delay, ``fail``, ``exit`` or
    ``drop``) to this test's process through the installed ``sync_points`` or
    ``remote_sync_points`` controller, asking for ``sync_points`` if neither is; each action is
    labelled ``inject <item>`` in the trace. It returns ``{"RACELAB_INJECT": <every spec so far>}``
    for ``rq_worker_process(env=...)``, so real workers get the same injections. On
    ``remote_sync_points`` the injections stay local to this process (workers take theirs from
    the env, not twice) and the workers' actions land in its merged trace. An ``exit`` never fires
    in the test's own process. It costs what its controller costs; the injections end with it
    at teardown, and a connection a ``drop`` broke is closed then.
    """
    from racelab.harness import inject as injection
    from racelab.harness import race
    from racelab.harness.remote import RemoteSyncPoints
    from racelab.harness.syncpoints import BaseSyncPoints

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
        return {injection.ENV: ",".join(specs)}

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
