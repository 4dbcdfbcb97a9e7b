"""The rule model of sync points: points, actions, rules, waits and hits.

Plain, immutable, JSON-serialisable data shared by the local controller
(:mod:`racelab.harness.syncpoints`) and the one that crosses processes through Redis
(:mod:`racelab.harness.remote`). Nothing here blocks, installs or talks to Redis.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import pkgutil
import time
from typing import Any, Callable

__all__ = ["Action", "Hit", "Point", "Rules", "Wait", "format_trace", "point"]


@dataclasses.dataclass(frozen=True)
class Point:
    """A race-point name, optionally narrowed by a context filter (a dict) or a predicate.

    A filter matches a hit whose context has each of its items; a single value matches a list in
    the context that contains it (``{"tables": "shop_order"}`` matches a commit that wrote
    ``shop_order`` among others). As a predecessor the point is reached once it was passed
    ``times`` times (by any actors).
    """

    name: str
    where: dict | Callable[[dict], bool] | None = None
    times: int = 1

    def matches(self, name: str, context: dict) -> bool:
        """Return whether a hit of ``name`` with ``context`` is this point."""
        if name != self.name:
            return False
        if self.where is None:
            return True
        if callable(self.where):
            return bool(self.where(context))
        return all(key in context and _same(context[key], value) for key, value in self.where.items())

    def __str__(self):
        times = f" ×{self.times}" if self.times > 1 else ""
        if self.where is None:
            return repr(self.name) + times
        if callable(self.where):
            return f"{self.name!r} where {getattr(self.where, '__name__', 'predicate')}(){times}"
        return f"{self.name!r} {self.where}{times}"

    def to_json(self) -> dict:
        """Return a JSON-ready dict; a predicate cannot be sent and raises TypeError."""
        if callable(self.where):
            raise TypeError(
                f"The point {self} has a predicate, which cannot cross processes; "
                f"use a context filter instead: ({self.name!r}, {{'key': value}})."
            )
        return {"name": self.name, "where": self.where, "times": self.times}

    @classmethod
    def from_json(cls, data: dict) -> Point:
        return cls(data["name"], data.get("where"), data.get("times", 1))


def _same(found, wanted) -> bool:
    if isinstance(found, (list, tuple)) and not isinstance(wanted, (list, tuple)):
        return wanted in found
    return found == wanted


def point(spec) -> Point:
    """Turn ``"name"``, ``("name", {filter})``, ``("name", predicate)`` or a Point into a Point."""
    if isinstance(spec, Point):
        return spec
    if isinstance(spec, str):
        return Point(spec)
    if (isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str)
            and (isinstance(spec[1], dict) or callable(spec[1]))):
        return Point(spec[0], spec[1])
    raise TypeError(
        f"{spec!r} is not a race point: write 'name', ('name', {{'key': value}}) or "
        f"('name', predicate)."
    )


@dataclasses.dataclass(frozen=True)
class Hit:
    """One pass through a race point: who, when (``time.monotonic()``), with what, and what was done."""

    point: str
    actor: str
    time: float
    context: dict
    waited: float = 0.0
    actions: tuple = ()

    def to_json(self) -> str:
        # Contexts may carry model instances: their repr is what a trace reader needs.
        return json.dumps(dataclasses.asdict(self), default=repr)

    @classmethod
    def from_json(cls, text) -> Hit:
        data = json.loads(text)
        return cls(**{**data, "actions": tuple(data.get("actions", ()))})


@dataclasses.dataclass(frozen=True)
class Action:
    """Something to do at a point: ``call``, ``delay``, ``fail``, ``exit`` or ``meet``, with a label for the trace.

    A ``meet`` (arg: the number of parties) is carried out by the controller, not by :meth:`run`.
    """

    point: Point
    kind: str
    arg: Any
    label: str = ""
    origin: int | None = None  # pid that set an ``exit``; it never fires there, so a test cannot kill itself.

    def note(self) -> str:
        if self.kind == "delay":
            text = f"delay {self.arg * 1000:g}ms"
        elif self.kind == "call":
            text = f"call {self.arg if isinstance(self.arg, str) else getattr(self.arg, '__name__', self.arg)}"
        elif self.kind == "fail":
            exc = _exception(self.arg)
            text = f"fail {type(exc).__name__}: {exc}"
        elif self.kind == "meet":
            text = f"meet {self.arg} parties"
        else:
            text = f"exit {self.arg}"
        return f"{text} ({self.label})" if self.label else text

    def applies_here(self) -> bool:
        return not (self.kind == "exit" and self.origin == os.getpid())

    @property
    def arrival(self) -> Point:
        """Return, for a ``meet``, the point each arriving party records: ``<name>:arrived``, as often as parties."""
        return Point(f"{self.point.name}:arrived", self.point.where, int(self.arg))

    @property
    def local(self) -> bool:
        """Return whether this action can run only in this process (a function object, or a predicate point)."""
        return (self.kind == "call" and not isinstance(self.arg, str)) or callable(self.point.where)

    def run(self, context: dict):
        """Do a call or delay now; return a zero-argument finisher for fail or exit, else None."""
        if self.kind == "call":
            func = pkgutil.resolve_name(self.arg) if isinstance(self.arg, str) else self.arg
            func(context)
        elif self.kind == "delay":
            time.sleep(self.arg)  # An injected delay, not an ordering: the wait is the fault.
        elif self.kind == "fail":
            exc = _exception(self.arg)

            def finish():
                raise exc
            return finish
        elif self.kind == "exit":
            return lambda: os._exit(self.arg)
        return None

    def to_json(self) -> dict:
        arg = self.arg
        if self.kind == "call" and not isinstance(arg, str):
            raise TypeError(
                f"A callback at {self.point} cannot cross processes as a function object; "
                f"pass its dotted path instead, e.g. 'myapp.testing:on_commit'."
            )
        if self.kind == "fail":
            exc = _exception(arg)
            arg = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "args": list(exc.args)}
        return {"point": self.point.to_json(), "kind": self.kind, "arg": arg,
                "label": self.label, "origin": self.origin}

    @classmethod
    def from_json(cls, data: dict) -> Action:
        arg = data["arg"]
        if data["kind"] == "fail":
            arg = pkgutil.resolve_name(arg["type"])(*arg["args"])
        return cls(Point.from_json(data["point"]), data["kind"], arg, data.get("label", ""), data.get("origin"))


def _exception(spec) -> BaseException:
    # A fresh copy per hit, so that two actors never share one traceback.
    return spec() if isinstance(spec, type) else copy.copy(spec)


@dataclasses.dataclass(frozen=True)
class Rules:
    """Orderings and actions, immutable: changes return new Rules, so readers never need a lock."""

    orders: tuple = ()
    actions: tuple = ()

    def predecessors(self, name: str, context: dict) -> list[Point]:
        """Return the points that must have been passed before this hit may pass."""
        return [before for before, after in self.orders if after.matches(name, context)]

    def actions_for(self, name: str, context: dict) -> list[Action]:
        """Return the actions to take at this hit, in the order they were added."""
        return [a for a in self.actions if a.point.matches(name, context) and a.applies_here()]

    def __add__(self, other: Rules) -> Rules:
        return Rules(self.orders + other.orders, self.actions + other.actions)

    def __bool__(self):
        return bool(self.orders or self.actions)

    def to_json(self) -> dict:
        return {"orders": [[a.to_json(), b.to_json()] for a, b in self.orders],
                "actions": [a.to_json() for a in self.actions]}

    @classmethod
    def from_json(cls, data: dict) -> Rules:
        return cls(tuple((Point.from_json(a), Point.from_json(b)) for a, b in data.get("orders", ())),
                   tuple(Action.from_json(a) for a in data.get("actions", ())))


@dataclasses.dataclass(frozen=True)
class Wait:
    """An actor held at ``point`` until each of ``predecessors`` is passed."""

    actor: str
    point: str
    context: dict
    predecessors: tuple
    since: float

    def __str__(self):
        return f"{self.actor!r} at {self.point!r} for {', '.join(self.predecessors)}"


def format_trace(hits, limit: int = 40) -> str:
    """Return the trace as numbered lines, times in ms from the first hit; only the last ``limit``."""
    if not hits:
        return "    (no race point was passed)"
    start = hits[0].time
    lines = []
    for index, hit in enumerate(hits):
        line = f"    #{index:<3} {(hit.time - start) * 1000:9.1f}ms  {hit.actor:<18} {hit.point}"
        if hit.context:
            line += f" {hit.context}"
        if hit.waited:
            line += f"  (waited {hit.waited * 1000:.1f}ms)"
        if hit.actions:
            line += f"  [{'; '.join(hit.actions)}]"
        lines.append(line)
    if len(lines) > limit:
        lines = [f"    ... {len(lines) - limit} earlier hits"] + lines[-limit:]
    return "\n".join(lines)
