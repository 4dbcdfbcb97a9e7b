"""The racelab fixtures that need neither Django nor RQ; :mod:`racelab.harness.plugin` registers them.

Each public fixture's docstring is its documentation (``pytest --fixtures``). Fixtures whose
name starts with ``_`` are internal; :mod:`racelab.harness.fixtures_django` replaces
``_racelab_actor_teardown`` (closing each actor thread's DB connections). Nothing is installed
or started until a test asks for one of these fixtures.
"""
from __future__ import annotations

import os
import uuid

import pytest

from racelab.harness import points
from racelab.harness.checker import Checker, all_completed
from racelab.harness.explorer import Explorer
from racelab.harness.history import History
from racelab.harness.remote import RemoteSyncPoints
from racelab.harness.runner import run_concurrently
from racelab.harness.rules import format_trace
from racelab.harness.scheduler import Schedule, Scheduler
from racelab.harness.syncpoints import SyncPoints

__all__ = ["sync_points", "remote_sync_points", "race_history", "race_checker", "race_scheduler",
           "concurrently", "race_explorer", "race_redis_url", "_race_seed", "_racelab_points", "_racelab_actor_teardown"]

REDIS_ENVS = ("RACELAB_REDIS_URL", "REDIS_URL")  # a Redis the user configured, in order of preference

SEED = pytest.StashKey[int]()  # the session's base seed, set by the plugin
SECTIONS = pytest.StashKey[list]()  # (title, zero-argument text function) shown when a test fails
REPORTS = pytest.StashKey[dict]()  # the test's reports by phase, to act at teardown on the outcome


def add_section(request, title, text):
    """Show ``text()`` under "racelab <title>" in the report of this test if it fails."""
    request.node.stash.setdefault(SECTIONS, []).append((title, text))


def _call_passed(request) -> bool:
    report = request.node.stash.get(REPORTS, {}).get("call")
    return report is not None and report.passed


@pytest.fixture
def _race_seed(request):
    """Return this run's seed: the parametrized one under --race-runs, else the session's."""
    return request.config.stash[SEED]


@pytest.fixture
def _racelab_actor_teardown():
    """Return the function each actor thread calls as it ends (None here; Django closes connections)."""
    return None


@pytest.fixture
def _racelab_points():
    """Install the built-in race points (Django's and RQ's) in this process, once; every controller fixture asks."""
    points.install()


@pytest.fixture(scope="session")
def race_redis_url(request):
    """Give the URL of this run's Redis, for workers and remote sync points: one database per xdist worker.

    It is ``--race-redis``, else ``$RACELAB_REDIS_URL``, else ``$REDIS_URL``, else a throw-away
    ``redis-server`` that racelab starts on loopback the first time a test asks (a few
    milliseconds; stopped when the run ends). Each xdist worker gets database 1 + its number, so
    parallel tests never take each other's jobs, and ``use_redis`` empties RQ's keys there before
    each test: do not point it at a Redis whose queues you keep.
    """
    url = request.config.getoption("race_redis") or next(filter(None, map(os.environ.get, REDIS_ENVS)), None)
    if not url:
        from racelab.harness.services import ServiceUnavailable, start_redis

        try:
            service = start_redis()
        except ServiceUnavailable as exc:
            pytest.fail(f"{exc}\nOr give racelab a Redis: --race-redis URL or RACELAB_REDIS_URL.", pytrace=False)
        request.addfinalizer(service.stop)
        url = service.url
    base = url.split("?")[0].rstrip("/")
    if base.rsplit("/", 1)[-1].isdigit():
        base = base.rsplit("/", 1)[0]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return f"{base}/{1 + int(worker[2:]) % 15}"


@pytest.fixture
def sync_points(request, _racelab_points):
    """Give a :class:`~racelab.harness.syncpoints.SyncPoints` installed for this test's threads.

    Order, delay, fail and call back at race points of this process; its timeout is
    ``--race-timeout``. It costs an in-memory trace and one Condition, nothing per point not
    hit. It is disabled at teardown, releasing any waiter; a wait that timed out in a thread that
    swallowed the error (an RQ worker thread) makes a passing test error at teardown. The trace is
    shown when the test fails. With ``remote_sync_points`` too, the one set up last is installed:
    ask for ``remote_sync_points`` alone when other processes take part, it serves this process's
    threads too. With ``race_scheduler``, the scheduler picks who runs and passes every hit on to
    this controller, whose orderings and trace still apply.
    """
    controller = SyncPoints(timeout=request.config.getoption("race_timeout"))
    add_section(request, "trace", lambda: format_trace(controller.trace))
    with controller:
        yield controller
    if controller.timeouts and _call_passed(request):
        pytest.fail(f"A sync-point wait timed out in a thread that did not raise it:\n{controller.timeouts[0]}",
                    pytrace=False)


@pytest.fixture
def remote_sync_points(request, race_redis_url, _racelab_points):
    """Give a :class:`~racelab.harness.remote.RemoteSyncPoints` whose rules other processes obey.

    It owns a fresh namespace in the run's Redis (``race_redis_url``), is installed in this
    process, and puts ``RACELAB_CONTROL_URL`` and ``RACELAB_CONTROL_NAMESPACE`` into
    ``os.environ`` (and ``.env``) so that child processes inherit them: ``rq_worker_process``
    workers obey it by themselves, any other process once it calls
    ``racelab.harness.points.install_from_env()`` at start-up.
    It costs a Redis round trip or two per race point in every process. The merged trace of all
    processes is shown when the test fails; the keys are deleted at teardown. Against
    ``sync_points``, see there.
    """
    controller = RemoteSyncPoints(race_redis_url, f"test-{uuid.uuid4().hex[:12]}",
                                  timeout=request.config.getoption("race_timeout"))
    add_section(request, "trace", lambda: format_trace(controller.trace))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in controller.env.items():
            patch.setenv(name, value)
        try:
            with controller:
                yield controller
        finally:
            controller.cleanup()


@pytest.fixture
def race_history(request, tmp_path):
    """Give an empty :class:`~racelab.harness.history.History` for this test's actors to record operations in.

    It costs a lock per operation. At teardown it is written as JSON Lines to
    ``<tmp_path>/history.jsonl``; when the test fails, the report gives that path.
    """
    history, path = History(), tmp_path / "history.jsonl"

    def dumped():
        history.dump(path)
        return f"{len(history)} operations in {path}"
    add_section(request, "history", dumped)
    yield history
    history.dump(path)


@pytest.fixture
def race_checker(race_history):
    """Give a :class:`~racelab.harness.checker.Checker` over ``race_history`` that already holds ``all_completed``.

    Add the application's invariants with ``race_checker.add(name, fn)``, then call
    ``race_checker.check(state=...).assert_valid()``. It costs nothing until ``check()`` runs.
    """
    return Checker({"all_completed": all_completed}, history=race_history)


@pytest.fixture
def race_scheduler(request, _race_seed, _racelab_actor_teardown, _racelab_points):
    """Give a seeded :class:`~racelab.harness.scheduler.Scheduler`; ``race_scheduler.run({...})`` runs actors under it.

    The seed is ``--race-seed`` (or one drawn per session and shown in the header), plus ``i``
    for the ``i``-th run under ``--race-runs`` or ``@pytest.mark.race(runs=...)``; the strategy
    is the marker's, else ``--race-strategy``; depth ``--race-depth``; timeout
    ``--race-timeout``; set ``.steps`` to PCT's step estimate. It installs itself only inside
    ``run()``, costing a thread hand-off per race point. When the test fails the report shows
    the decisions and ``Replay: pytest --race-seed N <nodeid>``. With ``sync_points``, the
    scheduler picks who runs and ``sync_points`` still orders and traces.
    """
    marker = request.node.get_closest_marker("race")
    strategy = (marker.kwargs.get("strategy") if marker else None) or request.config.getoption("race_strategy")
    scheduler = Scheduler(_race_seed, strategy, depth=request.config.getoption("race_depth"),
                          timeout=request.config.getoption("race_timeout"),
                          teardown=_racelab_actor_teardown, nodeid=request.node.nodeid)
    add_section(request, "scheduler", scheduler.describe)
    return scheduler


@pytest.fixture
def race_explorer(request, _race_seed, _racelab_actor_teardown, _racelab_points, sync_points):
    """Give an :class:`~racelab.harness.explorer.Explorer`: it finds a race from the actors alone.

    ``race_explorer.explore(run_once, faults=("kill",), workers=1)`` calls ``run_once(scheduler)``
    once per run, each under a scheduler seeded ``--race-seed × 10000 + i`` with the strategy of the race
    marker or ``--race-strategy`` (default ``pos``), for at most ``--race-budget`` runs, until
    ``run_once`` returns an anomaly; it then shrinks the failing schedule, replays it, and returns
    the figures and the finding (whose replay command takes ``--race-schedule``). Each run costs
    what the actors cost, plus a thread hand-off per race point. With ``--race-schedule`` it
    replays that one schedule instead. ``sync_points`` comes with it, as the scheduler's next
    controller (callbacks such as history records still fire); give it no ordering. For real
    worker processes, start them with ``rq_worker_process(n, env=race_explorer.worker_env())``:
    their jobs are then scheduled like threads, through Redis.
    """
    marker = request.node.get_closest_marker("race")
    strategy = (marker.kwargs.get("strategy") if marker else None) or request.config.getoption("race_strategy")
    text = request.config.getoption("race_schedule")
    try:
        schedule = Schedule.decode(text) if text else None
    except ValueError as exc:
        raise pytest.UsageError(f"--race-schedule {text!r}: {exc}") from None
    confirm = request.config.getoption("race_confirm")
    return Explorer(_race_seed, strategy, budget=request.config.getoption("race_budget"),
                    timeout=request.config.getoption("race_timeout"), nodeid=request.node.nodeid,
                    shrink=confirm > 0, confirm=confirm,
                    teardown=_racelab_actor_teardown, schedule=schedule,
                    redis_url=lambda: request.getfixturevalue("race_redis_url"))


@pytest.fixture
def concurrently(request, _racelab_actor_teardown):
    """Give :func:`~racelab.harness.runner.run_concurrently`: ``concurrently({"a": fa, "b": fb})`` runs them at once.

    Each actor runs in its own thread named after it, released from a barrier together, and
    closes its database connections at the end when ``racelab.harness.fixtures_django`` is loaded. The
    default timeout is ``--race-timeout``. It costs one thread per actor; it schedules nothing
    (see ``race_scheduler``), and returns a RunResult whose ``overlapped()`` proves concurrency.
    """
    default_timeout = request.config.getoption("race_timeout")

    def run(actors, timeout=None):
        __tracebackhide__ = True
        return run_concurrently(actors, default_timeout if timeout is None else timeout,
                                teardown=_racelab_actor_teardown)
    return run
