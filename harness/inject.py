"""Turn an injection spec such as ``"commit=200ms,worker=300ms,enqueue=fail"`` into sync-point rules.

The spec comes from a test (the ``inject`` fixture) or from ``RACELAB_INJECT`` in a served
process's environment, read by :func:`racelab.harness.remote.install_from_env`, so that a load run against
a real server can widen a race window too. Each item is ``KEY=VALUE`` or ``KEY[FILTER]=VALUE``:

- ``KEY`` is one of :data:`POINTS`, each a built-in point that any Django + RQ app passes
  (``commit`` → ``db.commit``, ``worker`` → ``rq.job.start``, ``enqueue`` → ``rq.enqueue``), or
  any race-point name containing a dot;
- ``FILTER`` (optional) narrows the point to hits whose context has those items, like a sync
  point's ``("rq.job.start", {"job": ...})``: ``name=value`` pairs separated by ``;``, a value of
  digits being an int (``worker[job=myapp.jobs.send_receipt]=300ms``,
  ``import.job_claimed[import_id=7]=exit``);
- ``VALUE`` is one of :data:`VALUES`: a delay, ``fail``, ``exit``/``exit:CODE`` or ``drop``.

Every injection labels its action, so the trace shows what it did and why
(``delay 200ms (RACELAB_INJECT commit=200ms)``). Parsing never installs anything.
"""
from __future__ import annotations

import dataclasses
import os
import re

from racelab.harness.rules import Action, Point, Rules

__all__ = ["POINTS", "VALUES", "ENV", "Injection", "InjectedFault", "InjectedRedisDown", "parse", "rules",
           "rules_from_env", "apply", "drop_db_connection"]

ENV = "RACELAB_INJECT"

#: The injection keys and the built-in race points they act on.
POINTS = {"commit": "db.commit", "worker": "rq.job.start", "enqueue": "rq.enqueue"}

#: The injection values, and what each does at its point.
VALUES = {
    "<N>ms": "delay: hold the actor there N milliseconds (also <N>s, seconds)",
    "fail": "raise InjectedFault; at enqueue a Redis ConnectionError too, as if Redis were down",
    "exit": "os._exit(1) there (exit:<CODE> for another code): the process is killed, never the test's own",
    "drop": "close this thread's DB connection underneath Django (the context's alias, else 'default'); "
            "at commit, the COMMIT then fails with the driver's error",
}

#: The callback a ``drop`` runs at its point, by dotted path so that it crosses processes.
DROP_CALLBACK = "racelab.harness.inject:drop_db_connection"

_VALUE_HELP = "one of " + ", ".join(VALUES) + " (a delay: 200ms, 0.3s; exit:<CODE> for an exit code)"
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s)$")
_ITEM = re.compile(r"^(?P<key>[^\[\]=]+?)\s*(?:\[(?P<where>[^\]]*)\])?\s*=\s*(?P<value>.*)$")
_SPLIT = re.compile(r",(?![^\[]*\])")  # commas outside [...]


class InjectedFault(RuntimeError):
    """Raised at a point by a ``KEY=fail`` injection."""


try:
    from redis.exceptions import ConnectionError as _RedisConnectionError
except ImportError:  # pragma: no cover - redis is a dependency; keep parsing usable without it
    _RedisConnectionError = ConnectionError


class InjectedRedisDown(_RedisConnectionError, InjectedFault):
    """Raised at ``rq.enqueue`` by ``enqueue=fail``: caught like a real Redis connection error."""


@dataclasses.dataclass(frozen=True)
class Injection:
    """One parsed item: the point it acts on, ``kind`` (delay/fail/exit/drop), its argument and filter."""

    key: str
    point: str
    kind: str
    arg: object
    text: str
    where: dict | None = None

    def action(self, source: str = "inject", origin: int | None = None) -> Action:
        """Return the sync-point action, labelled ``"<source> <KEY=VALUE>"`` for the trace.

        An ``exit`` never fires in the process ``origin`` (the test's own pid, when a test sets it).
        A ``drop`` is a ``call`` of :data:`DROP_CALLBACK`, shown so in the trace.
        """
        kind, arg = ("call", DROP_CALLBACK) if self.kind == "drop" else (self.kind, self.arg)
        return Action(Point(self.point, self.where), kind, arg, f"{source} {self.text}", origin)


def parse(spec: str) -> list[Injection]:
    """Parse a comma-separated spec; raise ValueError naming the bad item and the valid choices."""
    injections = []
    for item in filter(None, (part.strip() for part in _SPLIT.split(spec or ""))):
        match = _ITEM.match(item)
        if not match or not match["value"].strip():
            raise ValueError(f"Injection {item!r} has no value: write KEY=VALUE or KEY[name=value]=VALUE, "
                             f"VALUE being {_VALUE_HELP}.")
        key, value = match["key"].strip(), match["value"].strip()
        if key in POINTS:
            name = POINTS[key]
        elif "." in key:
            name = key
        else:
            valid = ", ".join(f"{k} ({v})" for k, v in POINTS.items())
            raise ValueError(f"Unknown injection key {key!r} in {spec!r}: use one of {valid}, "
                             f"or a race-point name containing a dot.")
        where = _where(item, match["where"]) if match["where"] is not None else None
        injections.append(Injection(key, name, *_value(key, name, value, item), item, where))
    return injections


def _where(item, text):
    where = {}
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = (s.strip() for s in pair.partition("="))
        if not sep or not name:
            raise ValueError(f"Injection {item!r} has a bad filter {pair!r}: write [name=value] or "
                             f"[name=value;name2=value2], e.g. worker[job=myapp.jobs.run]=300ms.")
        where[name] = int(value) if value.isdigit() else value
    if not where:
        raise ValueError(f"Injection {item!r} has an empty filter []: drop the brackets or write [name=value].")
    return where


def _value(key, name, value, item):
    duration = _DURATION.match(value)
    if duration:
        number, unit = duration.groups()
        return "delay", float(number) / (1000 if unit == "ms" else 1)
    if value == "fail":
        fault = InjectedRedisDown if key == "enqueue" else InjectedFault
        return "fail", fault(f"racelab injected a failure at {name!r} ({item})")
    if value == "drop":
        return "drop", None
    if value == "exit" or value.startswith("exit:"):
        code = value.partition(":")[2] or "1"
        if code.isdigit():
            return "exit", int(code)
    raise ValueError(f"Injection {item!r} has a bad value {value!r}: use {_VALUE_HELP}.")


def rules(spec: str, source: str = "inject", origin: int | None = None) -> Rules:
    """Return the spec's injections as Rules, each action labelled with ``source`` and its item."""
    return Rules(actions=tuple(i.action(source, origin) for i in parse(spec)))


def rules_from_env(environ=None) -> Rules:
    """Return the Rules of ``RACELAB_INJECT`` (empty when unset); a bad spec raises ValueError."""
    environ = os.environ if environ is None else environ
    return rules(environ.get(ENV, ""), source=ENV)


def apply(spec: str, controller, source: str = "inject") -> list[Injection]:
    """Add the spec's injections to a sync-points controller (local or remote) and return them.

    On a remote controller they are shared: every process under its control applies them.
    An ``exit`` added here fires only in other processes, never in the one that calls this.
    """
    injections = parse(spec)
    for injection in injections:
        controller._add(injection.action(source, origin=os.getpid()))
    return injections


def drop_db_connection(context: dict) -> None:
    """Close this thread's raw DB-API connection for ``context["alias"]`` (else ``default``) behind Django's back.

    Django is not told: its wrapper still holds the closed connection, so the next statement
    (at ``db.commit``, the COMMIT) fails with the driver's error — psycopg 3's OperationalError,
    psycopg2's InterfaceError, sqlite3's ProgrammingError, wrapped by Django — as when the server
    or network drops it.
    Nothing happens when the thread has no open connection. Django is imported only here.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    raw = connections[context.get("alias") or DEFAULT_DB_ALIAS].connection
    if raw is not None:
        raw.close()


def die_like_a_process() -> None:
    """Close every DB connection of this thread, as the database does when the process holding them dies.

    The server rolls back what they had not committed and frees their locks (SQLite's write lock
    too); Django's wrappers then open new connections when the thread works again. Called before
    a thread-mode worker is killed at a point, where a real process would simply be gone.
    """
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            connection.connection.close()  # behind Django's back first: nothing gets committed on the way out
        connection.close()
