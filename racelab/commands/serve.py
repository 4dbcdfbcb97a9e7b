"""Serve the bundled app (gunicorn + rq workers) on PostgreSQL and Redis it starts; Ctrl-C stops everything."""
import signal
import threading

from racelab.serving import DB_CHOICES, served_app


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=8080, help="Port on 127.0.0.1 (default 8080).")
    parser.add_argument("--db", default="postgres", help=f"{' or '.join(DB_CHOICES)} (throw-away) or a database URL.")
    parser.add_argument("--redis", default=None, help="Redis URL (default: a throw-away redis-server).")
    parser.add_argument("--workers", type=int, default=2, help="rq worker processes (default 2).")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2).")
    parser.add_argument("--user-token", default=None, help="API token for the first user (default: random).")
    parser.add_argument("--inject", default="", help="Widen race windows, e.g. commit=200ms,worker=300ms.")
    parser.add_argument("--fixes", default="all", help="Fixes that stay on: all, none or e.g. R1,R3.")


def run(args):
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with served_app(port=args.port, db=args.db, redis_url=args.redis, workers=args.workers,
                    web_workers=args.web_workers, user_token=args.user_token, inject=args.inject,
                    fixes=args.fixes) as app:
        print(f"racelab is serving at {app.url}/\n  API token: {app.token}\n"
              f"  file manager: {app.url}/login?token={app.token}\n  user: racelab / racelab\n"
              f"  fixes: {args.fixes}{'  inject: ' + args.inject if args.inject else ''}\nCtrl-C stops it.", flush=True)
        stop.wait()
    print("Stopped.", flush=True)
    return 0
