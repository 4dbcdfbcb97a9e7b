"""The proof of power: each fix flag off is caught, and with every flag on the race suite stays clean.

Three kinds of test, from cheapest to dearest:

- ``test_every_race_has_a_buggy_scenario_that_must_reproduce`` (always; no database): every race
  R1-R12 has a scenario module whose ``RACE`` names it and a test parametrised over ``mode`` with
  ``buggy``, run through the ``scenario`` fixture and ending in ``scenario.check``; and
  ``test_a_buggy_run_without_anomaly_fails`` shows that ``Scenario`` turns off exactly its race's
  flag and that ``check`` fails a buggy run that found nothing (and a fixed run that found
  something). Together: turning any one flag off makes the suite's own buggy scenario fail.
- ``test_each_fix_flag_off_is_caught[R…]``: runs ``racelab races --mode buggy --only R…`` (one
  seed, the session's) in a subprocess and asserts the race was reproduced. When the buggy
  scenario of that race runs in this very session (the whole suite), it is skipped: that test is
  the proof already, and CI runs each scenario once. R11 cannot race on SQLite and is accepted
  as skipped there only.
- ``test_every_fix_on_repeats_the_race_suite_without_anomaly``: ``racelab races --mode fixed
  --seeds N`` with ``RACELAB_FIXES=all``, N from ``RACELAB_POWER_RUNS`` (default 3, cheap enough for
  CI); ``RACELAB_POWER_RUNS=50`` is the thorough run. It must exit 0 and its JSON show 0 anomalies.

The subprocesses run on this session's database (a database of their own on the same
PostgreSQL server, or a private SQLite file) and this xdist worker's Redis database.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from racelab.harness import databases
from scenarios.common import MODES, RACES, RESULTS_ENV, ROOT, module_of

POWER_RUNS = int(os.environ.get("RACELAB_POWER_RUNS", "3"))
POWER_TIMEOUT = 90 + 20 * POWER_RUNS  # seconds for `racelab races --mode fixed --seeds POWER_RUNS`, generous
SQLITE_ONLY_SKIPS = {"R11"}  # races a SQLite run cannot reproduce (the scenario skips, saying why)


def scenario_module(race):
    """Import and return the one scenario module of ``race`` (``scenarios/rNN_*.py``)."""
    paths = sorted(Path(__file__).parent.glob(f"{module_of(race)}*.py"))
    assert len(paths) == 1, f"{race} needs exactly one scenario module scenarios/{module_of(race)}*.py, found {paths}"
    return importlib.import_module(f"scenarios.{paths[0].stem}")


def modes_of(test):
    """Return the modes a test function is parametrised over (``@pytest.mark.parametrize("mode", …)``)."""
    return [mode for mark in getattr(test, "pytestmark", []) if mark.name == "parametrize" and mark.args[0] == "mode"
            for mode in mark.args[1]]


def on_sqlite():
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


def races_command(tmp_path, *args):
    """Return ``(argv, env)`` running ``racelab races`` on this session's database, writing ``tmp_path/races.json``."""
    env = {**os.environ, "RACELAB_FIXES": "all"}
    env.pop(RESULTS_ENV, None)  # our own outcomes must not land in an enclosing `racelab races` run
    if on_sqlite():
        db = "sqlite"
    else:
        # A database of its own on the session's server: pytest-django names the test database
        # after it, so parallel runs (and this session's test_<name>_gwN) never collide.
        db = urlunsplit(urlsplit(databases.chosen())._replace(path=f"/power_{uuid.uuid4().hex[:10]}"))
    argv = [sys.executable, "-m", "racelab.cli", "races", "--db", db, "--workers", "0",
            "--output", str(tmp_path / "races.json"), *args]
    return argv, env


def run_races(tmp_path, *args, timeout=240):
    """Run ``racelab races`` with ``args``; return its exit code, its JSON summary and a replay hint."""
    argv, env = races_command(tmp_path, *args)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = tmp_path / "races.json"
    summary = json.loads(output.read_text()) if output.exists() else []
    shown = " ".join(shlex.quote(a) for a in ["racelab", "races", "--db", "sqlite" if on_sqlite() else "postgres", *args])
    report = f"Replay: RACELAB_FIXES=all {shown}\n--- its output ---\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
    return done.returncode, summary, report


# --- every race has a buggy scenario that fails when it does not reproduce ---------------------------


@pytest.mark.parametrize("race", RACES)
def test_every_race_has_a_buggy_scenario_that_must_reproduce(race):
    module = scenario_module(race)
    assert getattr(module, "RACE", None) == race, f"{module.__name__}.RACE is {getattr(module, 'RACE', None)!r}, not {race!r}"
    buggy = [name for name, test in vars(module).items()
             if name.startswith("test_") and callable(test) and "buggy" in modes_of(test)
             and "scenario" in inspect.signature(test).parameters and "scenario.check(" in inspect.getsource(test)]
    assert buggy, (f"{module.__name__} has no test parametrised over mode with 'buggy' that asks for the `scenario` "
                   f"fixture and ends in scenario.check(...): turning fix {race} off would go unnoticed. Parametrise "
                   f"it with @pytest.mark.parametrize('mode', MODES).")


def test_a_buggy_run_without_anomaly_fails(settings, tmp_path, monkeypatch):
    from racelab.harness.checker import Anomaly
    from racelab.harness.history import History
    from scenarios.common import Scenario

    monkeypatch.delenv(RESULTS_ENV, raising=False)
    settings.IMPORT_FIXES = {race: True for race in RACES}
    for race in RACES:
        scenario = Scenario(race, "buggy", 1, settings, History(), tmp_path)
        assert [fix for fix, on in settings.IMPORT_FIXES.items() if not on] == [race]
        with pytest.raises(AssertionError, match=f"{race} did not reproduce with fix\\(es\\) {race} off"):
            scenario.check(None)
        settings.IMPORT_FIXES = {fix: True for fix in RACES}

    def found(history, state):
        return [Anomaly("found", "an anomaly")]
    fixed = Scenario("R3", "fixed", 1, settings, History(), tmp_path)
    assert all(settings.IMPORT_FIXES.values())
    with pytest.raises(AssertionError, match="R3 showed an anomaly with every fix on"):
        fixed.check(None, found)
    assert set(MODES) == {"fixed", "buggy"}


# --- each flag off, run for real ------------------------------------------------------------------


@pytest.mark.parametrize("race", RACES)
def test_each_fix_flag_off_is_caught(race, request, tmp_path, _race_seed):
    prefix = module_of(race)
    here = [item.nodeid for item in request.session.items if Path(str(item.path)).name.startswith(prefix)
            and getattr(item, "callspec", None) and item.callspec.params.get("mode") == "buggy"]
    if here:
        pytest.skip(f"{here[0]} runs in this session with fix {race} off and must reproduce it: that is the proof, "
                    f"not run twice. Run scenarios/test_power.py alone to replay it through `racelab races`.")

    code, summary, report = run_races(tmp_path, "--mode", "buggy", "--only", race, "--seeds", "1",
                                      "--seed", str(_race_seed), "--no-scheduler")

    rows = [row for row in summary if (row["race"], row["mode"]) == (race, "buggy")]
    assert len(rows) == 1, f"racelab races wrote no buggy row for {race} (exit {code}).\n{report}"
    row = rows[0]
    if row["runs"] == 0 and row["skipped"] and race in SQLITE_ONLY_SKIPS and on_sqlite():
        pytest.skip(f"{race} on SQLite: {row['skip_reason']}")
    assert (code, row["runs"], row["anomalies"]) == (0, 1, 1), (
        f"With fix {race} off, the {race} scenario did not catch it: exit {code}, {row['runs']} run(s), "
        f"{row['anomalies']} with an anomaly" + (f", skipped: {row['skip_reason']}" if row["skipped"] else "")
        + f".\n{report}")


# --- every flag on, many times ----------------------------------------------------------------------


@pytest.mark.timeout(POWER_TIMEOUT + 30)
def test_every_fix_on_repeats_the_race_suite_without_anomaly(tmp_path, _race_seed):
    code, summary, report = run_races(tmp_path, "--mode", "fixed", "--seeds", str(POWER_RUNS),
                                      "--seed", str(_race_seed), timeout=POWER_TIMEOUT)

    assert sorted(row["race"] for row in summary) == sorted(RACES), f"racelab races summarised {summary}.\n{report}"
    dirty = [f"{row['race']}: {row['anomalies']} of {row['runs']} runs, e.g. {row['example']}"
             for row in summary if row["anomalies"]]
    short = [f"{row['race']}: {row['runs']} runs" + (f" (skipped: {row['skip_reason']})" if row["skipped"] else "")
             for row in summary if row["runs"] < POWER_RUNS]
    assert not dirty, "With every fix on, the race suite found anomalies:\n  " + "\n  ".join(dirty) + f"\n{report}"
    assert not short, (f"With every fix on, races ran fewer than RACELAB_POWER_RUNS={POWER_RUNS} times:\n  "
                       + "\n  ".join(short) + f"\n{report}")
    assert code == 0, f"racelab races exited {code} with a clean summary.\n{report}"
