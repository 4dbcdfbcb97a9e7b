"""Sync points across processes, kept in Redis: a real ``rq worker`` obeys the test's rules.

The test process makes a :class:`RemoteSyncPoints` (the owner) and sets orderings, delays,
failures and exits on it exactly as on :class:`racelab.harness.syncpoints.SyncPoints`; the rules go to
Redis. Each other process calls :func:`install_from_env` at start-up, which reads
``RACELAB_CONTROL_URL`` and ``RACELAB_CONTROL_NAMESPACE`` and installs a controller that fetches
the rules at each race point, waits on the same Redis stream and appends its passes to it. So
the owner's :attr:`~RemoteSyncPoints.trace` holds every process's hits, in the order Redis saw
them; times are ``time.monotonic()``, comparable between processes of one machine.

Keys, under ``racelab:<namespace>:``: ``rules`` (JSON), ``trace`` (a stream: the passes, and
the wake-up of every waiter), ``waits`` (a hash of who waits where, for timeout messages).
Callbacks cross as dotted paths; a callback given as a function, or a point with a predicate,
stays in the test's own process (use a dotted path or a context filter for the others).
Nothing here starts Redis: see ``racelab.harness.services.start_redis()``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid

from racelab.harness import inject
from racelab.harness.rules import Action, Hit, Rules, Wait, point
from racelab.harness.syncpoints import BaseSyncPoints, SyncPoints

__all__ = ["RemoteSyncPoints", "from_env", "install_from_env", "ENV_URL", "ENV_NAMESPACE", "ENV_ACTOR"]

ENV_URL = "RACELAB_CONTROL_URL"
ENV_NAMESPACE = "RACELAB_CONTROL_NAMESPACE"
ENV_ACTOR = "RACELAB_ACTOR"  # optional: names this process in the trace instead of its pid
_TRACE_MAXLEN = 100_000
_POLL = 1.0  # seconds a blocked XREAD sleeps before re-checking that the rules are still enabled


class RemoteSyncPoints(BaseSyncPoints):
    """Sync points whose rules, waits and trace live in Redis, shared by every process that asks.

    ``RemoteSyncPoints(redis_url, namespace)`` in the test (``owner=True``) publishes rules and
    an enabled flag; a worker's copy (``owner=False``, made by :func:`install_from_env`) only
    reads them, adding its own ``local_rules`` (from ``RACELAB_INJECT``). The owner's
    :meth:`cleanup` deletes the keys; nothing is deleted by disabling.
    """

    def __init__(self, redis_url: str, namespace: str, timeout: float = 30.0, *, owner: bool = True,
                 local_rules: Rules | None = None, actor_prefix: str | None = None):
        import redis  # only here, so that racelab.harness.syncpoints works without the package

        super().__init__(timeout)
        self.url, self.namespace, self.owner = redis_url, namespace, owner
        self.redis = redis.Redis.from_url(redis_url)
        self.local_rules = local_rules or Rules()
        self._prefix = actor_prefix or os.environ.get(ENV_ACTOR) or str(os.getpid())
        base = f"racelab:{namespace}:"
        self._rules_key, self._trace_key, self._waits_key = base + "rules", base + "trace", base + "waits"

    @property
    def env(self) -> dict:
        """Return the environment variables that make a child process obey these rules."""
        return {ENV_URL: self.url, ENV_NAMESPACE: self.namespace}

    def _add(self, action: Action) -> None:
        """Share the action with every process, or keep it here when only this process can run it."""
        if action.local:
            self.local_rules = self.local_rules + Rules(actions=(action,))
        else:
            super()._add(action)

    def exit(self, name, code: int = 1, *, label: str = "") -> None:
        """Make any *other* process that reaches the point call ``os._exit(code)`` after recording it.

        The test process that set it never exits there, so a shared point cannot kill pytest.
        """
        self._add(Action(point(name), "exit", int(code), label, origin=os.getpid()))

    # -- where the rules live ---------------------------------------------------------------

    def _doc(self) -> dict:
        raw = self.redis.get(self._rules_key)
        return json.loads(raw) if raw else {"enabled": False, "rules": {}}

    def _rules(self):
        if not self._enabled:
            return None
        doc = self._doc()
        shared = Rules.from_json(doc["rules"]) if doc["enabled"] else None
        if shared is None and not self.local_rules:
            return None
        return (shared or Rules()) + self.local_rules

    def _update(self, fn) -> None:
        def transaction(pipe):
            raw = pipe.get(self._rules_key)
            doc = json.loads(raw) if raw else {"enabled": False, "rules": {}}
            doc = fn(doc)
            pipe.multi()
            pipe.set(self._rules_key, json.dumps(doc))

        self.redis.transaction(transaction, self._rules_key)

    def _change(self, fn) -> None:
        def change(doc):
            return {**doc, "rules": fn(Rules.from_json(doc["rules"])).to_json()}

        self._update(change)

    def enable(self):
        """Install here and, as owner, switch the shared rules on for every process."""
        if self.owner:
            self._update(lambda doc: {**doc, "enabled": True})
        return super().enable()

    def disable(self) -> None:
        """Uninstall here and, as owner, switch the shared rules off and release every waiter."""
        if self.owner:
            self._update(lambda doc: {**doc, "enabled": False})
        super().disable()

    def cleanup(self) -> None:
        """Delete this namespace's keys (rules, trace, waits); other processes then do nothing."""
        self.redis.delete(self._rules_key, self._trace_key, self._waits_key)

    # -- passes and waits -------------------------------------------------------------------

    def _actor(self) -> str:
        return f"{self._prefix}:{threading.current_thread().name}"

    def _record(self, hit: Hit) -> None:
        self.redis.xadd(self._trace_key, {"hit": hit.to_json()}, maxlen=_TRACE_MAXLEN, approximate=True)

    def _release(self) -> None:
        self.redis.xadd(self._trace_key, {"wake": "1"}, maxlen=_TRACE_MAXLEN, approximate=True)

    def _released(self) -> bool:
        return not self._enabled or not self._doc()["enabled"]

    def _enter(self, wait):
        token = uuid.uuid4().hex
        self.redis.hset(self._waits_key, token, json.dumps(dataclasses.asdict(wait), default=repr))
        return token

    def _leave(self, token):
        self.redis.hdel(self._waits_key, token)

    def _block(self, before, deadline):
        pending, last = [(p, p.times) for p in before], "0-0"  # each point, and passes still missing
        while pending:
            batch = self.redis.xread({self._trace_key: last}, count=1000)
            if not batch:
                remaining = deadline - time.monotonic()
                if self._released():
                    return []
                if remaining <= 0:
                    return [p for p, _ in pending]
                block_ms = max(1, int(min(remaining, _POLL) * 1000))
                batch = self.redis.xread({self._trace_key: last}, count=1000, block=block_ms)
            for _stream, entries in batch or ():
                for entry_id, fields in entries:
                    last = entry_id
                    if b"hit" in fields:
                        hit = Hit.from_json(fields[b"hit"])
                        pending = [(p, n - p.matches(hit.point, hit.context)) for p, n in pending]
                        pending = [(p, n) for p, n in pending if n > 0]
        return []

    @property
    def trace(self) -> list[Hit]:
        """Return every process's passes so far, in the order Redis received them."""
        return [Hit.from_json(fields[b"hit"])
                for _id, fields in self.redis.xrange(self._trace_key) if b"hit" in fields]

    def waiting(self) -> list[Wait]:
        """Return the actors of every process now held at a point, and what each waits for."""
        waits = [json.loads(raw) for raw in self.redis.hgetall(self._waits_key).values()]
        return [Wait(**{**w, "predecessors": tuple(w["predecessors"])}) for w in waits]


def from_env(environ=None):
    """Return the controller this process's environment asks for, not yet installed, or None.

    ``RACELAB_CONTROL_URL`` (+ ``RACELAB_CONTROL_NAMESPACE``) gives a :class:`RemoteSyncPoints`
    that obeys the test's rules; ``RACELAB_INJECT`` alone gives a :class:`SyncPoints` with those
    injections (its trace keeps the last 10,000 passes). Usable as the ``RACE_CONTROLLER`` factory.
    """
    environ = os.environ if environ is None else environ
    injected = inject.rules_from_env(environ)
    url = environ.get(ENV_URL)
    if url:
        namespace = environ.get(ENV_NAMESPACE)
        if not namespace:
            raise RuntimeError(
                f"{ENV_URL} is set but {ENV_NAMESPACE} is not: pass both, e.g. from "
                f"remote_sync_points.env, or unset {ENV_URL} to run without remote control.")
        controller = RemoteSyncPoints(url, namespace, owner=False, local_rules=injected)
    elif injected:
        controller = SyncPoints(rules=injected, trace_limit=10_000)
    else:
        return None
    controller._enabled = True  # Armed but not installed: the caller (or RACE_CONTROLLER) installs it.
    return controller


def install_from_env(environ=None):
    """Install the controller the environment asks for (see :func:`from_env`) and return it, or None.

    Call it once at a worker's or server's start-up; with none of the variables set it does nothing.
    """
    controller = from_env(environ)
    if controller is not None:
        controller.enable()
    return controller
