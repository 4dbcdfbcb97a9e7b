"""Serve the bundled app (gunicorn + rq workers) on PostgreSQL and Redis it starts; Ctrl-C stops everything.

It prints where the API token is (a file only you can read) and a one-time login link for
the file manager; press Enter for another link. What dies meanwhile (a worker, ``rq cron``,
gunicorn, Redis) is started again, and each restart is printed with how it ended; a Redis that
cannot start again is reported as down until it is back. Neither the token nor any password is
printed or put on a command line.
"""
import argparse
import os
import signal
import sys
import threading

from racelab.serving import DB_CHOICES, served_app

USER_TOKEN_ENV = "RACELAB_USER_TOKEN"
LINK_NOTE = "works once, expires after RACELAB_LOGIN_LINK_MAX_AGE seconds, default 3600"


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=8080, help="Port on 127.0.0.1 (default 8080).")
    parser.add_argument("--db", default="postgres", help=f"{' or '.join(DB_CHOICES)} (throw-away) or a database URL.")
    parser.add_argument("--redis", default=None, help="Redis URL (default: a throw-away redis-server with a password).")
    parser.add_argument("--workers", type=int, default=2, help="rq worker processes (default 2).")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2).")
    parser.add_argument("--user-token-file", default=None,
                        help=f"File holding the first user's API token (or set ${USER_TOKEN_ENV}; default: random).")
    parser.add_argument("--user-token", default=None, help=argparse.SUPPRESS)  # gone: refused with what to use instead
    parser.add_argument("--inject", default="", help="Widen race windows, e.g. commit=200ms,worker=300ms.")
    parser.add_argument("--fixes", default="all", help="Fixes that stay on: all, none or e.g. R1,R3.")


def user_token(args):
    """Return the token asked for by ``--user-token-file`` or ``$RACELAB_USER_TOKEN``, or None for a random one."""
    if args.user_token_file:
        try:
            with open(args.user_token_file) as given:
                return given.read().strip() or None
        except OSError as exc:
            raise SystemExit(f"racelab serve: cannot read --user-token-file {args.user_token_file}: {exc.strerror}.")
    return os.environ.get(USER_TOKEN_ENV) or None


def run(args):
    if args.user_token:
        print(f"racelab serve: --user-token is gone: a token on the command line is visible to every local user. "
              f"Set {USER_TOKEN_ENV}=KEY or pass --user-token-file PATH.")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with served_app(port=args.port, db=args.db, redis_url=args.redis, workers=args.workers,
                    web_workers=args.web_workers, user_token=user_token(args), inject=args.inject,
                    fixes=args.fixes) as app:
        print(f"racelab is serving at {app.url}/\n  API token in: {app.token_file}  (TOKEN=$(cat {app.token_file}))\n"
              f"  log in: {app.login_link()}  ({LINK_NOTE})\n"
              f"  fixes: {args.fixes}{'  inject: ' + args.inject if args.inject else ''}\n"
              "Enter prints a new login link; Ctrl-C stops it.", flush=True)
        threading.Thread(target=_links_on_enter, args=(app, stop), daemon=True).start()
        stop.wait()
    print("Stopped.", flush=True)
    return 0


def _links_on_enter(app, stop):
    for _ in sys.stdin:
        if stop.is_set():
            return
        print(f"  log in: {app.login_link()}  ({LINK_NOTE})", flush=True)
