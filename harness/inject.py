"""Turn an injection spec such as ``"commit=200ms,worker=300ms,enqueue=fail"`` into sync-point rules.

The spec comes from a test (the ``inject`` fixture) or from ``RACELAB_INJECT`` in a served
process's environment, read by :func:`harness.remote.install_from_env`, so that a load run against
a real server can widen a race window too. Each item is ``KEY=VALUE``:

- ``KEY`` is one of :data:`POINTS` (``commit`` → ``db.commit``, ``worker`` → ``job.start``,
  ``enqueue`` → ``job.enqueue``), or any race-point name containing a dot;
- ``VALUE`` is a delay (``200ms``, ``0.3s``), ``fail`` (raise :class:`InjectedFault`; at
  ``enqueue`` it is also a ``redis.exceptions.ConnectionError``, as if Redis were down), or
  ``exit`` / ``exit:CODE`` (``os._exit``, default code 1: a worker killed at that point).

Every injection labels its action, so the trace shows what it did and why
(``delay 200ms (RACELAB_INJECT commit=200ms)``). Parsing never installs anything.
"""
from __future__ import annotations

import dataclasses
import os
import re

from harness.syncpoints import Action, Point, Rules

__all__ = ["POINTS", "ENV", "Injection", "InjectedFault", "InjectedRedisDown", "parse", "rules", "rules_from_env", "apply"]

ENV = "RACELAB_INJECT"

#: The injection keys and the built-in race points they act on.
POINTS = {"commit": "db.commit", "worker": "job.start", "enqueue": "job.enqueue"}

_VALUE_HELP = "a delay (200ms, 0.3s), 'fail', 'exit' or 'exit:CODE'"
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s)$")


class InjectedFault(RuntimeError):
    """Raised at a point by a ``KEY=fail`` injection."""


try:
    from redis.exceptions import ConnectionError as _RedisConnectionError
except ImportError:  # pragma: no cover - redis is a dependency; keep parsing usable without it
    _RedisConnectionError = ConnectionError


class InjectedRedisDown(_RedisConnectionError, InjectedFault):
    """Raised at ``job.enqueue`` by ``enqueue=fail``: caught like a real Redis connection error."""


@dataclasses.dataclass(frozen=True)
class Injection:
    """One parsed ``KEY=VALUE``: the point it acts on, ``kind`` (delay/fail/exit) and its argument."""

    key: str
    point: str
    kind: str
    arg: object
    text: str

    def action(self, source: str = "inject", origin: int | None = None) -> Action:
        """Return the sync-point action, labelled ``"<source> <KEY=VALUE>"`` for the trace.

        An ``exit`` never fires in the process ``origin`` (the test's own pid, when a test sets it).
        """
        return Action(Point(self.point), self.kind, self.arg, f"{source} {self.text}", origin)


def parse(spec: str) -> list[Injection]:
    """Parse a comma-separated spec; raise ValueError naming the bad item and the valid choices."""
    injections = []
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not value:
            raise ValueError(f"Injection {item!r} has no value: write KEY=VALUE, VALUE being {_VALUE_HELP}.")
        if key in POINTS:
            name = POINTS[key]
        elif "." in key:
            name = key
        else:
            valid = ", ".join(f"{k} ({v})" for k, v in POINTS.items())
            raise ValueError(f"Unknown injection key {key!r} in {spec!r}: use one of {valid}, "
                             f"or a race-point name containing a dot.")
        injections.append(Injection(key, name, *_value(key, name, value, item), item))
    return injections


def _value(key, name, value, item):
    duration = _DURATION.match(value)
    if duration:
        number, unit = duration.groups()
        return "delay", float(number) / (1000 if unit == "ms" else 1)
    if value == "fail":
        fault = InjectedRedisDown if key == "enqueue" else InjectedFault
        return "fail", fault(f"racelab injected a failure at {name!r} ({item})")
    if value == "exit" or value.startswith("exit:"):
        code = value.partition(":")[2] or "1"
        if code.isdigit():
            return "exit", int(code)
    raise ValueError(f"Injection {item!r} has a bad value {value!r}: use {_VALUE_HELP}.")


def rules(spec: str, source: str = "inject") -> Rules:
    """Return the spec's injections as Rules, each action labelled with ``source`` and its item."""
    return Rules(actions=tuple(i.action(source) for i in parse(spec)))


def rules_from_env(environ=None) -> Rules:
    """Return the Rules of ``RACELAB_INJECT`` (empty when unset); a bad spec raises ValueError."""
    environ = os.environ if environ is None else environ
    return rules(environ.get(ENV, ""), source=ENV)


def apply(spec: str, controller, source: str = "inject") -> list[Injection]:
    """Add the spec's injections to a sync-points controller (local or remote) and return them.

    An ``exit`` added here fires only in other processes, never in the one that calls this.
    """
    injections = parse(spec)
    for injection in injections:
        controller._add(injection.action(source, origin=os.getpid()))
    return injections
