"""Keep what ``racelab serve`` started running: reap each child that ends, say why, start it again.

:class:`Supervisor` is a thread that polls its children (``rq worker`` processes, ``rq cron``,
the gunicorn master; gunicorn replaces its own web workers) and the Redis it started. A child
that ends is reaped at once (no zombie), logged with its exit status or signal, and started
again with the same command and environment, after a backoff that doubles while it keeps dying
young: at most one restart per child every :data:`MAX_BACKOFF_S` seconds. A dead Redis is started
again on its port with its data and password first, since the workers and ``rq cron`` need it;
if it cannot be, the log says so in capitals every :data:`MAX_BACKOFF_S` seconds, and the
health endpoint answers 503 (it cannot reach Redis) until it is back.

Hand-written rather than supervisord or systemd: those would be one more service for a
throw-away local stack, and could not restart a Redis on its temp dir and password.
"""
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

POLL_S = 0.2
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
STABLE_AFTER_S = 30.0  # a child that ran this long starts again at once, with the backoff reset


@dataclass
class Child:
    """A supervised process: its ``name``, how to start it (``argv``, ``popen`` keywords), the running ``process``."""

    name: str
    argv: list
    popen: dict
    process: subprocess.Popen = None
    started_at: float = 0.0
    backoff: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    on_start: list = field(default_factory=list)

    def start(self):
        self.process, self.started_at, self.restart_at = subprocess.Popen(self.argv, **self.popen), time.monotonic(), None
        for callback in self.on_start:
            callback(self.process)


class Supervisor(threading.Thread):
    """Restart the children and the Redis handed to it until :meth:`stop` is called.

    ``redis`` is a :class:`racelab.harness.services.Service` (None: a Redis given by URL, not
    ours to restart). ``say`` prints one line to serve's output. Nothing is restarted after
    :meth:`stop`, which returns once the thread has ended; the children are left running for the
    caller to stop.
    """

    def __init__(self, say, redis=None):
        super().__init__(name="racelab-supervisor", daemon=True)
        self.children, self.redis, self.say = [], redis, say
        self.redis_down_since = None
        self._stopping = threading.Event()
        self._next_redis_try, self._redis_backoff = 0.0, 0.0

    def add(self, name, argv, on_start=(), **popen):
        """Start ``argv`` with ``popen`` keywords now and keep it running; return its :class:`Child`.

        Each ``on_start(process)`` is called with every process started for it, the first included.
        """
        child = Child(name, list(argv), popen, on_start=list(on_start))
        child.start()
        self.children.append(child)
        return child

    def stop(self):
        self._stopping.set()
        if self.is_alive():
            self.join()

    def run(self):
        while not self._stopping.wait(POLL_S):
            try:
                now = time.monotonic()
                # Workers and cron started while Redis is down would only die again: reap, but wait for it.
                may_start = self.redis is None or self._redis_up(now)
                for child in self.children:
                    self._watch(child, now, may_start)
            except Exception as exc:  # a supervisor that dies supervises nothing: say it, go on
                self.say(f"racelab serve: the supervisor hit {exc!r}; it carries on.")

    def _watch(self, child, now, may_start):
        if child.restart_at is None:
            status = child.process.poll()  # reaps it
            if status is None:
                return
            ran = now - child.started_at
            child.backoff = 0.0 if ran >= STABLE_AFTER_S else min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * child.backoff))
            child.restart_at = now + child.backoff
            self.say(f"racelab serve: {child.name} (pid {child.process.pid}) {describe_exit(status)} after {ran:.1f}s; "
                     f"starting it again in {child.backoff:.1f}s.")
        if may_start and now >= child.restart_at and not self._stopping.is_set():
            child.restarts += 1
            child.start()
            self.say(f"racelab serve: {child.name} started again (pid {child.process.pid}, restart {child.restarts}).")

    def _redis_up(self, now):
        if self.redis.process.poll() is None:
            return True
        if now < self._next_redis_try:
            return False
        if self.redis_down_since is None:
            self.redis_down_since = now
            self.say(f"racelab serve: Redis (pid {self.redis.process.pid}, port {self.redis.port}) "
                     f"{describe_exit(self.redis.process.returncode)}; starting it again with its data.")
        if self.redis.restart():
            self.say(f"racelab serve: Redis is back on port {self.redis.port} (pid {self.redis.process.pid}) "
                     f"after {time.monotonic() - self.redis_down_since:.1f}s, with its data.")
            self.redis_down_since, self._redis_backoff = None, 0.0
            return True
        self._redis_backoff = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * self._redis_backoff))
        self._next_redis_try = time.monotonic() + self._redis_backoff
        self.say(f"racelab serve: REDIS IS DOWN (port {self.redis.port}) for {now - self.redis_down_since:.0f}s and "
                 f"did not start again: imports wait and /api/health/import-flow answers 503. Its log: "
                 f"{self.redis.log_path}. Trying again in {self._redis_backoff:.1f}s.")
        return False


def describe_exit(status):
    """Return how a process ended, in words, from its ``Popen.returncode``: ``was killed by SIGKILL``, ``exited with 1``."""
    if status is not None and status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with {status}"


def printer(log):
    """Return a ``say(line)`` writing to ``log`` when it is a text file, else to stderr (``log`` is DEVNULL or a fd)."""
    out = log if hasattr(log, "write") else sys.stderr

    def say(line):
        print(line, file=out, flush=True)
    return say
