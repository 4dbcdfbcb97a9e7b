"""Run the Locust load suite against a served or given app, then judge the results with the gates.

One function, :func:`load_and_report`, serves ``racelab load`` and ``racelab run``.
Locust runs as a subprocess: importing it here would patch this interpreter with
gevent. Its exit code is ignored (it exits 1 on any recorded anomaly); the report's
verdict decides. Traffic goes to loopback only unless the caller allows otherwise.
"""
import contextlib
import importlib.util
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil

from racelab import locustfiles
from racelab.completeness import check_completeness
from racelab.dbwatch import DatabaseWatch
from racelab.locustfiles._settings import think_time as parse_think_time
from racelab.nemesis import FAULT_KINDS, Nemesis, NemesisError, parse_kinds
from racelab.recovery import RecoveryProbe
from racelab.serving import served_app
from racelab.reports.results import COMMIT_LOG_DIR, HOST_CPU_JSON, SERVER_LOG

LOCUSTFILES = Path(locustfiles.__file__).resolve().parent
SCENARIOS = ("uploads", "batch", "pdf", "mixed", "rapid")
MAX_USERS, MAX_RUN_TIME_S = 500, 1800  # hard bounds: a load run always stops by itself
STUCK_TIMEOUT_DEFAULT_S = 600  # the app's IMPORT_STUCK_AFTER_SECONDS unless its environment sets it


NOT_SERVED = ("the app was not served by racelab; set RACELAB_COMMIT_LOG=<results>/commit_log and "
              "RACE_CONTROLLER=racelab.harness.points.install_from_env (or call it from a gunicorn post_fork hook) "
              "in its processes to time them")


class LoadError(ValueError):
    """A load run that cannot start; the message says what to change."""


TOKEN_ENV = "RACELAB_TOKEN"  # how every load process gets the target's token: never on a command line


def token_from_file(path):
    """Return the API token in the file at ``path`` (None for no path); raise LoadError if it cannot be read."""
    if not path:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise LoadError(f"--token-file {path}: {exc.strerror}. Give the file `racelab serve` printed, "
                        f"or set {TOKEN_ENV}.") from None
    if not token:
        raise LoadError(f"--token-file {path} is empty; write the API token in it, or set {TOKEN_ENV}.")
    return token


def seconds(text):
    """Return the seconds in a Locust duration like ``60s``, ``2m``, ``1h30m`` or ``45``."""
    total, number = 0, ""
    for char in str(text).strip():
        if char.isdigit():
            number += char
        elif char in "hms" and number:
            total, number = total + int(number) * {"h": 3600, "m": 60, "s": 1}[char], ""
        else:
            raise LoadError(f"--run-time {text!r} is not a duration; write e.g. 60s, 2m or 1h30m.")
    return total + int(number or 0)


def is_loopback(host):
    """Return True when the URL ``host`` names this machine."""
    name = urlparse(host).hostname or ""
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_host(host, allow_remote):
    """Refuse a target that is not on this machine unless ``allow_remote`` (load belongs on loopback)."""
    if not is_loopback(host) and not allow_remote:
        raise LoadError(f"--host {host} is not a loopback address. Load-test only servers you run; to target your "
                        "own staging server, pass --allow-remote-host.")


def locust_command(scenario, host, users, spawn_rate, run_time, results, processes=0, think_time=""):
    """Return the Locust argv for ``scenario`` (a name or ``all``) writing CSVs under ``results``."""
    if scenario != "all" and scenario not in SCENARIOS:
        raise LoadError(f"--scenario {scenario!r} is unknown; use one of {', '.join(SCENARIOS)} or all.")
    locustfile = LOCUSTFILES / ("" if scenario == "all" else f"{scenario}.py")
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r",
            str(spawn_rate), "-t", run_time, "--host", host, "--csv", str(Path(results) / "load"),
            "--csv-full-history", "--stop-timeout", "30", "--loglevel", "WARNING"]
    if think_time:
        try:
            parse_think_time(think_time)
        except ValueError as exc:
            raise LoadError(str(exc)) from None
        argv += ["--think-time", think_time]
    return argv + (["--processes", str(processes)] if processes else [])


def reconciler_timing(stuck):
    """Return the app's reconciler settings for a stuck timeout of ``stuck`` s: a lost job is re-sent well before."""
    quarter = max(1, stuck // 4)
    return {"IMPORT_STUCK_AFTER_SECONDS": str(stuck), "IMPORT_LOST_AFTER_SECONDS": str(min(10, quarter)),
            "IMPORT_RECONCILE_INTERVAL_SECONDS": str(min(5, quarter))}


def load_and_report(scenario="all", users=20, spawn_rate=None, run_time="30s", host=None, token=None, inject="",
                    fixes="all", db="postgres", workers=3, processes=0, races_json=None, out="reports/latest",
                    allow_remote_host=False, log=None, think_time="", db_url=None, nemesis="", nemesis_every=10.0,
                    nemesis_for=3.0, nemesis_seed=0, stuck_timeout=None):
    """Run the load, write the report into ``out`` and return ``(exit_code, headline)``.

    Serves the bundled app itself when ``host`` is None (with ``inject`` and
    ``fixes``); those two apply to a served app only. ``races_json`` adds a
    ``racelab races`` result to the same gated report. The database is watched
    during the run (:mod:`racelab.dbwatch`): the served app's, or ``db_url``'s
    (a PostgreSQL URL) beside a ``host``.

    ``nemesis`` (comma-separated :data:`~racelab.nemesis.FAULT_KINDS`) injects a fault
    every ``nemesis_every`` seconds for ``nemesis_for`` seconds into the served app's
    own processes (never with ``host``). After the load, the completeness check
    (:mod:`racelab.completeness`) waits up to the stuck timeout + 60 s for every import
    to end and judges the database; ``stuck_timeout`` overrides the app's (given to a
    served app as ``IMPORT_STUCK_AFTER_SECONDS``).
    """
    if importlib.util.find_spec("locust") is None:
        raise LoadError("the load suite needs Locust, from the 'load' extra: pip install 'racelab[load]'.")
    from racelab.reports.report import write_report
    from racelab.reports.summary import headline

    if not 0 < users <= MAX_USERS:
        raise LoadError(f"--users {users} is out of bounds; use 1 to {MAX_USERS}.")
    if not 0 < seconds(run_time) <= MAX_RUN_TIME_S:
        raise LoadError(f"--run-time {run_time} is out of bounds; use at most {MAX_RUN_TIME_S // 60}m.")
    if host:
        check_host(host, allow_remote_host)
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise LoadError(f"An external --host needs its API token: set {TOKEN_ENV}=KEY or pass --token-file PATH "
                            "(`racelab serve` printed the path of its token file).")
        if inject or fixes != "all":
            raise LoadError("--inject and --fixes change the served app only; drop them with --host.")
    if nemesis:
        if host:
            raise LoadError("--nemesis faults only the processes racelab load serves itself; drop --host "
                            "(a nemesis never signals a process it did not start).")
        try:
            kinds = parse_kinds(nemesis)
        except NemesisError as exc:
            raise LoadError(str(exc)) from None
        if db != "postgres" and any(FAULT_KINDS[kind][0] == "postgres" for kind in kinds):
            raise LoadError(f"--nemesis pause-postgres needs the PostgreSQL racelab starts: use --db postgres, not {db}.")
        if not 0 < nemesis_for < nemesis_every:
            raise LoadError(f"--nemesis-for {nemesis_for:g} must be above 0 and below --nemesis-every {nemesis_every:g}.")
    if not host and db_url:
        raise LoadError("--db-url names the database of a --host; the served app's database is watched already.")
    if db_url and not db_url.startswith(("postgres://", "postgresql://")):
        raise LoadError(f"--db-url {db_url} is not a PostgreSQL URL; write postgresql://USER@HOST:PORT/NAME "
                        "(a SQLite file can only be watched from the app's own processes).")
    results = Path(out) / "results"  # kept beside the report: Locust's CSVs explain a breach
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    if races_json and Path(races_json).exists():
        shutil.copy(races_json, results / "races.json")
    stuck = stuck_timeout or int(os.environ.get("IMPORT_STUCK_AFTER_SECONDS", STUCK_TIMEOUT_DEFAULT_S))
    with contextlib.ExitStack() as stack:
        app = None
        if not host:
            # The app's own output goes to a file of the results, where a failed start-up says to look.
            output = log or stack.enter_context(open(results / "server_output.log", "w"))
            app = stack.enter_context(served_app(db=db, workers=workers, web_workers=2, inject=inject, fixes=fixes,
                                                 log=output, access_log=results / SERVER_LOG,
                                                 commit_log=results / COMMIT_LOG_DIR,
                                                 extra_env=reconciler_timing(stuck)))
            host, token = app.url, app.token
            watch = DatabaseWatch(app.database_url, results, server_log=app.database_log)
        else:
            watch = DatabaseWatch(db_url, results, not_measured={"commit_p95_ms": NOT_SERVED})
        argv = locust_command(scenario, host, users, spawn_rate or max(1, users // 10), run_time, results, processes,
                              think_time)
        print(f"racelab load: {scenario} with {users} users for {run_time} against {host}"
              f"{' (inject ' + inject + ')' if inject else ''}{' (fixes ' + fixes + ')' if fixes != 'all' else ''}",
              flush=True)
        psutil.cpu_percent()  # starts the count that the call after the run reads
        with watch:
            with (Nemesis(kinds, app.pids, results, nemesis_every, nemesis_for, seed=nemesis_seed,
                          deadline=time.monotonic() + seconds(run_time),
                          probe=RecoveryProbe(app.url, app.database_url)) if nemesis else contextlib.nullcontext()):
                subprocess.run(argv, env={**os.environ, TOKEN_ENV: token}, check=False,
                               timeout=seconds(run_time) + 180)
        database_url = app.database_url if app else db_url
        if database_url:
            print(f"racelab load: completeness check (waiting at most {stuck + 60}s for every import to end)", flush=True)
            check_completeness(database_url, results, wait_limit_s=stuck + 60)
        (results / HOST_CPU_JSON).write_text(json.dumps(
            {"cores": psutil.cpu_count(), "busy_pct": psutil.cpu_percent(), "app_here": is_loopback(host)}))
    verdict, _ = write_report(results, out)
    line = headline(verdict)
    for breach in verdict.breaches():
        print(f"  ✗ {breach}", flush=True)
    print(f"{line}\nReport: {Path(out).resolve() / 'report.html'}", flush=True)
    return (0 if verdict.passed else 1), line
