"""The racelab pytest plugin: options, the ``race`` marker, seeds, failure reports and the fixtures.

Registered as the ``racelab`` pytest11 entry point (or ``-p racelab.harness.plugin``). The fixtures are
the API; their bodies live in :mod:`racelab.harness.fixtures_core` and, when Django is installed,
:mod:`racelab.harness.fixtures_django`. Nothing here touches Django settings.
"""
from __future__ import annotations

import importlib.util
import random

import pytest

from racelab.harness.fixtures_core import (  # noqa: F401 - imported to register the fixtures
    REPORTS, SECTIONS, SEED, _race_seed, _racelab_actor_teardown, _racelab_points, concurrently, race_checker,
    race_explorer, race_history, race_redis_url, race_scheduler, remote_sync_points, sync_points)
from racelab.harness.scheduler import STRATEGIES

# --- Django ----------------------------------------------------------------------------------------
# The Django + RQ fixtures (use_redis, rq_worker_threads, rq_worker_process, inject, eventually) are
# the racelab-django plugin, racelab.harness.django_plugin. Here, only when Django is installed, Django's
# version of the internal actor fixture replaces the one above (imported after fixtures_core).
if importlib.util.find_spec("django") is not None:
    from racelab.harness.fixtures_django import *  # noqa: F401,F403,E402
# -------------------------------------------------------------------------------------------------


def pytest_addoption(parser):
    group = parser.getgroup("racelab", "race reproduction (racelab)")
    group.addoption("--race-seed", type=int, default=None, metavar="N",
                    help="Seed the race scheduler with N to replay a run (default: a random seed, shown in the header).")
    group.addoption("--race-runs", type=int, default=None, metavar="K",
                    help="Run each race test with K seeds N, N+1, ..., N+K-1 (default: the race marker's runs, else 1).")
    group.addoption("--race-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="Fail a sync-point wait or a concurrent run after SECONDS instead of hanging (default: 30).")
    group.addoption("--race-strategy", choices=STRATEGIES, default="pos",
                    help="Pick the scheduler's strategy unless the race marker names one: pos (conflict-aware partial "
                         "order sampling), pct, random (a uniform choice at every point) or free (no scheduling: "
                         "random sleeps, the naive baseline) (default: pos).")
    group.addoption("--race-budget", type=int, default=200, metavar="N",
                    help="Let race_explorer try at most N runs before it gives up finding an anomaly (default: 200).")
    group.addoption("--race-confirm", type=int, default=2, metavar="K",
                    help="Shrink a found schedule and replay it K times to prove it deterministic; 0 reports the "
                         "run as found, unshrunk, when only the runs to find it matter (default: 2).")
    group.addoption("--race-schedule", default=None, metavar="SCHEDULE",
                    help="Replay one schedule a finding printed (with its --race-seed), instead of exploring.")
    group.addoption("--race-depth", type=int, default=2, metavar="D",
                    help="Aim PCT at bugs of depth D, the number of orderings that must all hold (default: 2).")
    group.addoption("--race-redis", default=None, metavar="URL",
                    help="Redis for racelab's workers and remote sync points (default: $RACELAB_REDIS_URL, then "
                         "$REDIS_URL, then a throw-away redis-server started when a test first needs one).")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "race(runs=None, strategy=None): run this test under the race scheduler with several seeds. "
        "runs: try at least this many seeds (--race-runs may raise it; --race-seed alone replays one). "
        "strategy: 'pos', 'pct', 'random' or 'free', overriding --race-strategy for this test.")
    seed = getattr(config, "workerinput", {}).get("racelab_seed")  # pytest-xdist: the controller's seed
    if seed is None:
        seed = config.getoption("race_seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    config.stash[SEED] = seed


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    # Every xdist worker must draw the same seeds, or their collections (and replays) differ.
    node.workerinput["racelab_seed"] = node.config.stash[SEED]


def pytest_report_header(config):
    if not any(arg.startswith("--race-") for arg in config.invocation_params.args):
        return None  # a run that does not use racelab's options shows nothing of racelab
    seed = config.stash[SEED]
    return (f"racelab: seed {seed} (replay with --race-seed {seed}), strategy {config.getoption('race_strategy')}, "
            f"depth {config.getoption('race_depth')}, timeout {config.getoption('race_timeout'):g}s")


def _runs(config, marker) -> int:
    cli = config.getoption("race_runs")
    if config.getoption("race_seed") is not None:
        return cli or 1  # a given seed replays that one run unless more are asked for
    wanted = marker.kwargs.get("runs") if marker else None
    return max(wanted or 1, cli or 1)


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("race")
    if marker is not None:
        _validate(metafunc.definition.nodeid, marker)
    if marker is None and "race_scheduler" not in metafunc.fixturenames:
        return
    runs = _runs(metafunc.config, marker)
    if runs > 1:
        base = metafunc.config.stash[SEED]
        seeds = [base + i for i in range(runs)]
        if "_race_seed" not in metafunc.fixturenames:
            metafunc.fixturenames.append("_race_seed")
        metafunc.parametrize("_race_seed", seeds, ids=[f"seed={s}" for s in seeds])


def _validate(nodeid, marker):
    runs, strategy = marker.kwargs.get("runs"), marker.kwargs.get("strategy")
    if (marker.args or set(marker.kwargs) - {"runs", "strategy"}
            or (runs is not None and (not isinstance(runs, int) or runs < 1))
            or (strategy is not None and strategy not in STRATEGIES)):
        raise pytest.UsageError(
            f"{nodeid}: bad race marker (args={marker.args}, kwargs={marker.kwargs}): write "
            f"@pytest.mark.race(runs=K, strategy=S) with K >= 1 and S one of {', '.join(STRATEGIES)}.")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    reports = item.stash.setdefault(REPORTS, {})
    already_failed = any(r.failed for r in reports.values())
    reports[report.when] = report
    if report.failed and not already_failed:  # show the sections once, under the first failure
        for title, text in item.stash.get(SECTIONS, []):
            try:
                body = text()
            except Exception as exc:  # noqa: BLE001 - a broken section must not hide the failure
                body = f"(could not render: {type(exc).__name__}: {exc})"
            report.sections.append((f"racelab {title}", body))
    return report
