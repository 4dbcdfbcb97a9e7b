"""Load-test the import flow with Locust (the bundled app served for you, or --host) and gate the report.

Examples::

    racelab load --scenario all --users 100 --run-time 60s
    racelab load --scenario uploads --fixes none --inject commit=200ms,worker=300ms   # the gate must fail
    racelab load --nemesis pause-postgres,pause-redis,kill-web --nemesis-every 10 --nemesis-for 3
    racelab load --host http://127.0.0.1:8080 --token-file ~/.racelab-token           # any upstream-API server
    RACELAB_TOKEN=KEY racelab load --host http://127.0.0.1:8080                       # the same, from the environment

For more load than one machine gives, run Locust itself in master/worker mode:
``locust -f locustfiles/ --master --expect-workers N --headless ...`` here and
``locust -f locustfiles/ --worker --master-host HOST`` on each worker machine
(``RACELAB_TOKEN`` set on each); then ``python -m reports --results DIR``.
"""
import argparse
import os

from racelab.dbwatch import WatchError
from racelab.nemesis import FAULT_KINDS
from racelab.loadrun import SCENARIOS, LoadError, load_and_report, token_from_file
from racelab.serving import DB_CHOICES

DB_URL_ENV = "RACELAB_TARGET_DB_URL"  # not RACELAB_DB_URL: that is the test database the pytest plugin hands its workers


def add_arguments(parser):
    parser.add_argument("--scenario", default="all", help=f"One of {', '.join(SCENARIOS)}, or all (default).")
    parser.add_argument("--users", type=int, default=20, help="Concurrent Locust users (default 20, at most 500).")
    parser.add_argument("--spawn-rate", type=float, default=None, help="Users started per second (default users/10: a ten-second ramp).")
    parser.add_argument("--run-time", default="30s", help="How long the load runs, e.g. 60s or 2m (default 30s).")
    parser.add_argument("--think-time", default="",
                        help="Seconds each user pauses between imports, MIN-MAX or N (default: each scenario's pace).")
    parser.add_argument("--host", default=None, help="Target an app already running (default: serve the bundled one).")
    parser.add_argument("--token-file", default=None,
                        help="File holding the API token for --host (default: $RACELAB_TOKEN). Never on the command line.")
    parser.add_argument("--token", default=None, help=argparse.SUPPRESS)  # gone: refused with what to use instead
    parser.add_argument("--db-url", default=None,
                        help="PostgreSQL of the --host app, to watch its connections, lock waits and deadlocks "
                             f"(default: ${DB_URL_ENV}, which keeps its password off the command line).")
    parser.add_argument("--allow-remote-host", action="store_true",
                        help="Allow a --host that is not loopback (your own staging server only).")
    parser.add_argument("--inject", default="", help="Widen race windows in the served app, e.g. commit=200ms,worker=300ms.")
    parser.add_argument("--fixes", default="all", help="Fixes that stay on in the served app: all, none or e.g. R1,R3.")
    parser.add_argument("--db", default="postgres", help=f"Database of the served app: {' or '.join(DB_CHOICES)} or a URL.")
    parser.add_argument("--workers", type=int, default=3, help="rq worker processes of the served app (default 3).")
    parser.add_argument("--processes", type=int, default=0, help="Locust processes on this machine (default 1).")
    parser.add_argument("--nemesis", default="",
                        help=f"Faults to inject into the served app's own processes, in turn: {', '.join(FAULT_KINDS)} "
                             "(comma-separated; default none; refused with --host).")
    parser.add_argument("--nemesis-every", type=float, default=10.0, metavar="SECONDS",
                        help="Seconds from one fault's start to the next (default 10).")
    parser.add_argument("--nemesis-for", type=float, default=3.0, metavar="SECONDS",
                        help="Seconds each fault lasts; a paused process is resumed after it (default 3).")
    parser.add_argument("--nemesis-seed", type=int, default=0, help="Seed of the choice of target process (default 0).")
    parser.add_argument("--stuck-timeout", type=int, default=None, metavar="SECONDS",
                        help="The app's stuck timeout; the completeness check waits it + 60 s at most for every "
                             "import to end (default: $IMPORT_STUCK_AFTER_SECONDS or 600; given to a served app).")
    parser.add_argument("--out", default="reports/latest", help="Report folder (default reports/latest).")


def run(args):
    if args.token:
        print("racelab load: --token is gone: a key on the command line is visible to every local user. "
              "Set RACELAB_TOKEN=KEY or pass --token-file PATH.")
        return 2
    try:
        code, _ = load_and_report(
            scenario=args.scenario, users=args.users, spawn_rate=args.spawn_rate, run_time=args.run_time,
            host=args.host, token=token_from_file(args.token_file), inject=args.inject, fixes=args.fixes, db=args.db, workers=args.workers,
            processes=args.processes, out=args.out, allow_remote_host=args.allow_remote_host,
            think_time=args.think_time, db_url=args.db_url or (os.environ.get(DB_URL_ENV) if args.host else None), nemesis=args.nemesis,
            nemesis_every=args.nemesis_every, nemesis_for=args.nemesis_for, nemesis_seed=args.nemesis_seed,
            stuck_timeout=args.stuck_timeout)
    except (LoadError, WatchError) as exc:
        print(f"racelab load: {exc}")
        return 2
    return code
