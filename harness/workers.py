"""RQ workers for a test: threads of the test process, or real ``rq worker`` processes on its database.

:class:`ThreadWorker` runs RQ's ``SimpleWorker`` in a thread of the test process (fast, and
every sync point is local). :class:`ProcessWorkers` starts real worker processes
(``python -m racelab.harness.rqworker``: forking workers by default, as in production) that see
what the test sees: its test database, its Redis and the settings it changed
(:mod:`racelab.harness.overlay`), the modules on its ``sys.path``, and the race-point controller
through the environment. Both take their queue names from the caller; the fixtures read them from
the app's ``RQ_QUEUES``. Nothing here is a fixture: see :mod:`racelab.harness.django_plugin`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

__all__ = ["ThreadWorker", "ProcessWorkers", "child_pythonpath", "rq_state"]


class ThreadWorker:
    """An RQ ``SimpleWorker`` run in a background thread of the test process, with its own DB connection."""

    def __init__(self, redis_url, queues, name):
        from redis import Redis
        from rq import Queue, SimpleWorker
        from rq.timeouts import TimerDeathPenalty

        connection = Redis.from_url(redis_url)
        self.worker = SimpleWorker([Queue(q, connection=connection) for q in queues], connection=connection, name=name)
        # Signals belong to the main thread: job timeouts by timer, and stop() instead of SIGTERM.
        self.worker.death_penalty_class = TimerDeathPenalty
        self.worker._install_signal_handlers = lambda: None
        # RQ's command pub/sub (stop/kill by message) is not needed here, and each burst's
        # unsubscribe() joins its thread with a 1 s timeout: a second's delay per idle poll.
        self.worker.subscribe = self.worker.unsubscribe = lambda: None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = []
        self.thread.worker_errors = self.errors  # shown by a sync-point timeout (syncpoints.thread_stacks)
        for step in ("dequeue_job_and_maintain_ttl", "execute_job"):
            setattr(self.worker, step, self._keeping_errors(getattr(self.worker, step)))

    def _keeping_errors(self, step):
        """Wrap a worker step so that an error RQ's loop would only log ("found an unhandled exception,
        quitting") is kept: it can lose the job it had taken, so ``stop()`` raises it."""
        def kept(*args, **kwargs):
            try:
                return step(*args, **kwargs)
            except Exception as exc:
                self.errors.append(exc)
                raise
        return kept

    def _run(self):
        from django.db import connections

        try:
            while not self._stop.is_set():
                if not self.worker.work(burst=True, logging_level="WARNING", with_scheduler=False):
                    self._stop.wait(0.02)  # idle: poll the queues again shortly
        except Exception as exc:  # surfaced by stop()
            self.errors.append(exc)
        finally:
            connections.close_all()

    def start(self):
        self.thread.start()
        return self

    def stop(self, timeout=30):
        """Stop after the current job; raise TimeoutError if it does not end, or the first error the loop met."""
        self._stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"RQ worker thread {self.thread.name} did not stop within {timeout}s: a job is stuck.")
        if self.errors:
            raise self.errors[0]


class ProcessWorkers:
    """``count`` real worker processes on ``queues`` of the Redis at ``redis_url``, logging under ``log_dir``.

    ``env`` is added to the test's own environment (the settings overlay and ``PYTHONPATH`` are
    set here); ``worker_class`` is ``fork`` (a work horse per job) or ``simple``. Each process is
    named ``<prefix>-<n>`` in RQ and, through ``RACELAB_ACTOR``, in the race trace.
    """

    def __init__(self, redis_url, queues, count, log_dir, env=None, worker_class="fork", prefix="rq-process"):
        from racelab.harness import overlay

        self.queues, self.count, self.processes, self.logs = list(queues), count, [], []
        self.redis_url, self.worker_class, self.prefix, self.log_dir = redis_url, worker_class, prefix, Path(log_dir)
        self.env = {**os.environ, **overlay.environ(), "PYTHONPATH": child_pythonpath(), **(env or {})}

    def start(self, first=1, ready_within=60.0):
        """Start the processes, numbered from ``first``, and return self once RQ lists every one as a worker.

        Waiting for that matters: a job enqueued while the workers still import Django waits for
        them, and a run that expects it taken within a bound (the explorer's) judges it lost.
        """
        names = [f"{self.prefix}-{n}" for n in range(first, first + self.count)]
        for name in names:
            log = self.log_dir / f"{name}.log"
            self.logs.append(log)
            argv = [sys.executable, "-m", "racelab.harness.rqworker", "--with-scheduler",
                    "--worker-class", self.worker_class, "--name", name, *self.queues]
            with open(log, "ab") as out:
                self.processes.append(subprocess.Popen(argv, env={**self.env, "RACELAB_ACTOR": name,
                                                                  "RQ_REDIS_URL": self.redis_url},
                                                       stdout=out, stderr=subprocess.STDOUT))
        self._await_birth(names, ready_within)
        return self

    def _await_birth(self, names, timeout):
        """Block until each named worker has registered in RQ; raise RuntimeError naming the laggards if one
        exits first or ``timeout`` passes."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while True:
            missing = [name for name in names if not connection.exists(Worker.redis_worker_namespace_prefix + name)]
            if not missing:
                connection.close()
                return
            exited = any(p.poll() is not None for p in self.processes)
            if exited or time.monotonic() > deadline:
                why = "exited" if exited else f"did not register with RQ within {timeout:g} s"
                raise RuntimeError(f"RQ worker process(es) {', '.join(missing)} {why}; their output:\n"
                                   f"{self.log_tail()}\nFix what the output shows (settings, imports, the "
                                   "Redis URL), or give a slow machine more time: start(..., ready_within=SECONDS).")
            time.sleep(0.05)  # polled: a worker's birth has no notification to wait on

    def log_tail(self, lines=40):
        """Return the last ``lines`` lines each process wrote, under its name."""
        parts = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines(True) if log.exists() else []
            parts.append(f"--- {log.name} ---\n" + "".join(text[-lines:]))
        return "\n".join(parts)

    def stop(self, timeout=15):
        """Stop every process (SIGTERM: a warm shutdown after the current job), killing those that outlive ``timeout``."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def rq_state(redis_url, queues) -> str:
    """Return what RQ holds now on ``queues`` of the Redis at ``redis_url``, for a failed test's report.

    Each queue's waiting job ids and those in its intermediate, started, failed and scheduled
    registries, then every worker RQ lists, with its state, pid and queues: a job that no
    worker took is found there, or a worker that should not be there.
    """
    from redis import Redis
    from rq import Queue, Worker

    connection = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        lines = []
        for name in queues:
            queue = Queue(name, connection=connection)
            lines.append(f"queue {name!r}: waiting {queue.job_ids}, intermediate {queue.intermediate_queue.get_job_ids()}, "
                         f"started {queue.started_job_registry.get_job_ids()}, "
                         f"failed {queue.failed_job_registry.get_job_ids()}, "
                         f"scheduled {queue.scheduled_job_registry.get_job_ids()}")
        workers = [f"{w.name} ({w.get_state()}, pid {w.pid}, on {','.join(w.queue_names())})"
                   for w in Worker.all(connection=connection)]
        lines.append("workers: " + (", ".join(workers) or "none"))
        return "\n".join(lines)
    except Exception as exc:  # noqa: BLE001 - a report section must not fail the report
        return f"(RQ's state could not be read: {exc!r})"
    finally:
        connection.close()


def child_pythonpath() -> str:
    """Return a ``PYTHONPATH`` that lets a child import what this process imports: its project folders first.

    The folders pytest put on ``sys.path`` (the rootdir, conftest folders, ``pythonpath``) and the
    current directory come before any ``PYTHONPATH`` already set; the interpreter's own library
    folders are left to the child.
    """
    library = {os.path.realpath(p) for p in sysconfig.get_paths().values()}
    folders = [os.getcwd()] + [p for p in sys.path if p and os.path.isdir(p) and os.path.realpath(p) not in library
                               and "site-packages" not in p and not p.startswith(sys.base_prefix)]
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(folders + existing))
