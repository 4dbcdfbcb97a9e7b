"""Serve the bundled app for real: gunicorn, ``rq worker`` processes and ``rq cron``, on services it starts.

:func:`served_app` is the one place that starts it — ``racelab serve``, the load
suite and the browser tests all use it — and stops everything it started when
its ``with`` block ends, also on an exception. While it runs, a
:class:`racelab.supervisor.Supervisor` starts again whatever of it dies: a worker,
``rq cron``, the gunicorn master, and the Redis it started (with its data).

Secrets never go on a command line, which every local user can read (``ps``): the
database and Redis passwords (in ``DATABASE_URL``/``REDIS_URL``), the secret key and the
API token reach every process through its environment, and the token is written to a
file only its owner can read.
"""
import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field

from racelab import checkout, proctree
from racelab.dbwatch import SERVER_SETTINGS
from racelab.harness.commit_log import ENV as COMMIT_LOG_ENV
from racelab.harness.services import start_postgres, start_redis
from racelab.supervisor import Supervisor, printer

DB_CHOICES = ("sqlite", "postgres")
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s %(M)s"  # read by racelab.reports.results.server_times


@dataclass
class ServedApp:
    """A running app: its base ``url``, the first user's API ``token``, and the environment it runs with.

    ``token_file`` holds the token (mode 0600); ``database_url`` is the app's database, with
    its password; ``database_log`` the log of the PostgreSQL started for it (None for SQLite
    or a given URL). ``processes`` are the running gunicorn master, workers and ``rq cron``, in
    that order, kept current as the ``supervisor`` replaces them; ``redis`` is the Redis started
    for it (a :class:`racelab.harness.services.Service`; None for a given URL).
    """

    url: str
    token: str
    env: dict
    token_file: str = ""
    database_url: str = ""
    database_log: str | None = None
    processes: list = field(default_factory=list)
    services: dict = field(default_factory=dict)  # "postgres"/"redis" -> the harness Service started for it

    def pids(self, tree=False):
        """Return ``{role: [pid]}`` of the live processes started for this app: web, worker, redis, postgres.

        ``web`` are gunicorn's worker processes (its arbiter respawns them), ``worker`` the
        ``rq worker`` processes; ``tree`` adds every descendant of a server (PostgreSQL's
        backends). Only what :func:`served_app` started: never another process of the machine.
        """
        table = proctree.processes()
        found = {"web": [], "worker": [], "redis": [], "postgres": []}
        for process in filter(None, self.processes):  # None: a supervised child not started yet
            if process.poll() is None and "rqworker" in process.args:
                found["worker"].append(process.pid)
            elif process.poll() is None and "gunicorn" in process.args:
                found["web"] += [pid for pid, (parent, _) in table.items() if parent == process.pid]
        for role, service in self.services.items():
            process = service.process  # read now: a supervisor may have restarted the server
            if process is not None and process.poll() is None:
                found[role] = sorted(proctree.tree_pids([process.pid], table)) if tree else [process.pid]
        return found
    supervisor: Supervisor = None
    redis: object = None  # the Redis Service started for it (also services["redis"]), or None

    def login_link(self, username="racelab"):
        """Return a new one-time login link for ``username`` (see :mod:`label_studio.core.login_links`)."""
        return self.url + manage(self.env, "login_link", "--username", username)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served_app(port=None, db="postgres", redis_url=None, workers=2, web_workers=2, user_token=None,
               inject="", fixes="all", log=None, extra_env=None, access_log=None, commit_log=None):
    """Start the app and yield a :class:`ServedApp`; stop every process and server it started on exit.

    ``db`` is ``sqlite``, ``postgres`` (a throw-away server) or a URL; a
    ``redis_url`` given is used as is, else a throw-away Redis is started.
    ``inject`` (e.g. ``commit=200ms,worker=300ms``) widens race windows in the
    web and worker processes; ``fixes`` says which fixes stay on. With
    ``access_log`` (a path), gunicorn writes one line per request there:
    method, path, status and the milliseconds it took the server. With
    ``commit_log`` (a directory), every process logs its commits and lock waits
    there (:mod:`racelab.harness.commit_log`). A PostgreSQL started here logs
    every lock wait of 100 ms or more; each process connects under the
    ``application_name`` ``racelab web``, ``racelab worker`` or ``racelab cron``.

    The first user, ``racelab``, has the API token ``user_token`` (default: random) and no
    password: log in with :meth:`ServedApp.login_link`. ``DJANGO_SECRET_KEY`` is random
    unless the environment sets it.
    """
    root = checkout.require("Serving the app")
    port = port or free_port()
    log = log or sys.stderr
    home = tempfile.mkdtemp(prefix="racelab-serve-")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        database_log, services = None, {}
        if db == "postgres":
            postgres = stack.enter_context(start_postgres(settings=SERVER_SETTINGS))
            database_url, database_log = postgres.url, postgres.log_path
            services["postgres"] = postgres
        elif db == "sqlite":
            database_url = f"sqlite:///{home}/racelab.sqlite3"
        elif "://" in db:
            database_url = db
        else:
            raise ValueError(f"--db {db!r} is not a database; use one of {', '.join(DB_CHOICES)} or a URL.")
        redis = None if redis_url else stack.enter_context(start_redis())
        if redis is not None:
            redis_url, services["redis"] = redis.url, redis
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "label_studio.core.settings", "DATABASE_URL": database_url,
               "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
               "REDIS_URL": redis_url, "RACELAB_HOME": home, "RACELAB_FIXES": fixes, "RACELAB_INJECT": inject or "",
               "RACE_CONTROLLER": "racelab.harness.points.install_from_env" if inject or commit_log else "",
               COMMIT_LOG_ENV: str(commit_log or ""),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
               **(extra_env or {})}
        subprocess.run([*MANAGE, "migrate", "--verbosity", "0"], env=env, check=True)
        token = manage({**env, "RACELAB_API_TOKEN": user_token or ""}, "ensure_api_user")
        token_file = os.path.join(home, "api-token")  # home is mkdtemp's: 0700
        with os.fdopen(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(token + "\n")
        app = ServedApp(url=f"http://127.0.0.1:{port}", token=token, env=env, token_file=token_file,
                        database_url=database_url, database_log=database_log, services=services, redis=redis,
                        supervisor=Supervisor(printer(log), redis=redis))
        stack.callback(_stop, app.processes)
        stack.callback(app.supervisor.stop)  # first: nothing is started again while the rest stops

        def supervise(name, argv, env):
            index = len(app.processes)
            app.processes.append(None)
            app.supervisor.add(name, argv, on_start=[lambda process: app.processes.__setitem__(index, process)],
                               env=env, stdout=log, stderr=log)

        # keep-alive outlasts any client's idle time: no server close racing a reused connection's request.
        # Threads enough for the polls that wait for their import (?wait=N) besides the requests that work.
        supervise("gunicorn", [
            sys.executable, "-m", "gunicorn", "label_studio.core.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(web_workers), "--threads", "16", "--timeout", "120", "--log-level", "warning",
            "--keep-alive", "75",
            *(["--access-logfile", str(access_log), "--access-logformat", ACCESS_LOG_FORMAT] if access_log else [])],
            env={**env, "PGAPPNAME": "racelab web"})
        for number in range(1, workers + 1):
            supervise(f"rq worker {number}", [*MANAGE, "rqworker", "high", "default", "low", "--with-scheduler",
                                              "--worker-ttl", "30",
                                              "--worker-class", os.environ.get("RACELAB_WORKER_CLASS", "rq.worker.SimpleWorker")],
                      env={**env, "PGAPPNAME": "racelab worker"})
        supervise("rq cron", [sys.executable, "-m", "rq.cli", "cron", "label_studio.data_import.cron", "-l", "WARNING"],
                  env={**env, "PGAPPNAME": "racelab cron", "RQ_REDIS_URL": redis_url})
        _wait_until_up(app, where=f"in {log.name}" if isinstance(log, io.FileIO | io.TextIOWrapper)
                       and log not in (sys.stdout, sys.stderr) else "above")
        app.supervisor.start()
        yield app


MANAGE = [sys.executable, "-m", "django"]


def manage(env, *args):
    """Run a management command of the app with ``env``; return its output, stripped."""
    return subprocess.run([*MANAGE, *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


def _wait_until_up(app, where="above", timeout=60):
    """Return once ``app`` answers; raise RuntimeError naming a process that exited first and ``where`` its output is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in app.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(map(str, process.args))} exited with {process.returncode} at start-up; "
                                   f"its output is {where}.")
        try:
            with urllib.request.urlopen(f"{app.url}/api/health/import-flow", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # 503 (unhealthy) still means it serves
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"The app did not answer at {app.url} within {timeout}s.")


def _stop(processes, timeout=15):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
