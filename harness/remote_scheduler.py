"""The scheduler across processes: real ``rq worker`` processes park at their points and wait for their turn.

A :class:`~racelab.harness.scheduler.Scheduler` given a :class:`Bus` schedules the jobs of worker
processes as it schedules threads. In a worker process started with ``RACELAB_SCHEDULER_URL``
and ``RACELAB_SCHEDULER_NAMESPACE`` (:meth:`Bus.env`; ``racelab.harness.rqworker`` reads them
through :func:`racelab.harness.points.install_from_env`), a :class:`Guest` controller sends every
point it reaches to the scheduler while a run is on, and waits until the scheduler lets it go,
with the fault to carry out if any (a kill is ``os._exit``: the process is gone, as in a crash).
Between runs, and once the scheduler is gone, it lets everything pass.

Keys, under ``racelab:sched:<namespace>:``: ``active`` (set while a run is on), ``parked`` (a list
of the points reached, oldest first) and ``go:<token>`` (the answer to one of them).
"""
from __future__ import annotations

import json
import os
import threading
import uuid

__all__ = ["Bus", "Guest", "ENV_URL", "ENV_NAMESPACE", "guest_from_env"]

ENV_URL = "RACELAB_SCHEDULER_URL"
ENV_NAMESPACE = "RACELAB_SCHEDULER_NAMESPACE"
_ACTIVE_TTL = 3600  # seconds: a crashed test's run is over for its workers within the hour


class _Keys:
    def __init__(self, redis_url, namespace):
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        base = f"racelab:sched:{namespace}:"
        self.active, self.parked, self.go = base + "active", base + "parked", base + "go:"


class Bus(_Keys):
    """The scheduler's end: announce runs, hand parked remote points to it, and answer them.

    ``Bus(redis_url)`` picks a fresh namespace; :attr:`env` is what worker processes need to take
    part. :meth:`open` starts a run and a thread that calls ``on_park(actor, point, context, token)``
    for each point a worker reaches; :meth:`release` answers one; :meth:`close` ends the run.
    """

    def __init__(self, redis_url: str, namespace: str | None = None):
        self.url, self.namespace = redis_url, namespace or uuid.uuid4().hex[:12]
        super().__init__(redis_url, self.namespace)
        self._thread, self._stop = None, threading.Event()

    @property
    def env(self) -> dict:
        """Return the environment variables that make a worker process a guest of this bus."""
        return {ENV_URL: self.url, ENV_NAMESPACE: self.namespace}

    def open(self, on_park) -> None:
        """Start a run: remote workers now park at their points, reported through ``on_park``."""
        self.redis.delete(self.parked)
        self.redis.set(self.active, "1", ex=_ACTIVE_TTL)
        self._stop.clear()
        self._thread = threading.Thread(target=self._read, args=(on_park,), name="racelab-scheduler-bus", daemon=True)
        self._thread.start()

    def _read(self, on_park):
        while not self._stop.is_set():
            item = self.redis.blpop([self.parked], timeout=0.1)
            if item:
                message = json.loads(item[1])
                on_park(message["actor"], message["point"], message["context"], message["token"])

    def release(self, token: str, fault: str | None) -> None:
        """Let the remote point ``token`` go, with ``fault`` (``kill``, ``enqueue``, ``drop``) or none."""
        self.redis.rpush(self.go + token, json.dumps({"fault": fault}))
        self.redis.expire(self.go + token, 60)

    def close(self) -> None:
        """End the run: remote workers let every point pass again, parked ones included."""
        self.redis.delete(self.active)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class Guest(_Keys):
    """A worker process's controller: report each point to the scheduler while a run is on, then obey it.

    Hits pass on to ``next`` (the remote sync points or injections of the same process), before
    the fault is carried out.
    """

    def __init__(self, redis_url: str, namespace: str, actor: str, next_controller=None):
        super().__init__(redis_url, namespace)
        self.actor, self.next = actor, next_controller

    def hit(self, name: str, context: dict) -> None:
        fault = self._turn(name, context) if self.redis.exists(self.active) else None
        if self.next is not None:
            self.next.hit(name, context)
        if fault == "kill":
            os._exit(1)  # a worker killed at this point: no clean-up, the database rolls back what it held
        if fault == "enqueue":
            from racelab.harness.inject import InjectedRedisDown

            raise InjectedRedisDown("racelab's scheduler failed this enqueue (a fault it explored)")
        if fault == "drop":
            from racelab.harness.inject import drop_db_connection

            drop_db_connection(context)

    def _turn(self, name, context):
        token = uuid.uuid4().hex
        self.redis.rpush(self.parked, json.dumps({"token": token, "actor": self.actor, "point": name,
                                                  "context": context}, default=repr))
        while True:
            answer = self.redis.blpop([self.go + token], timeout=1)
            if answer:
                return json.loads(answer[1]).get("fault")
            if not self.redis.exists(self.active):
                return None  # the run ended without this point: go on unscheduled

    def waiting(self):
        return self.next.waiting() if hasattr(self.next, "waiting") else []


def guest_from_env(next_controller=None, environ=None):
    """Return a Guest when the environment names a scheduler's bus, wrapping ``next_controller``; else None."""
    environ = os.environ if environ is None else environ
    url, namespace = environ.get(ENV_URL), environ.get(ENV_NAMESPACE)
    if not url or not namespace:
        return None
    actor = environ.get("RACELAB_ACTOR") or str(os.getpid())
    return Guest(url, namespace, actor, next_controller)
