"""Hold invariants over a history (and a final state) and explain every anomaly in one sentence.

An invariant is a function ``(history, state) -> list[Anomaly]``; ``state`` is whatever the test
passes (for example the final database rows) and may be None. A :class:`Checker` holds named
invariants and runs them all; :meth:`Checker.check` returns a :class:`Result` with ``valid``, the
anomalies and a readable report. Checking never changes the history and never stops at the first
anomaly.

Generic invariants for any application (the race catalogue's own live in ``scenarios/``):

- :func:`all_completed` — no operation stays invoked without ok, fail or info;
- :func:`read_your_writes` — a read invoked after an ok write of the same key completed sees it;
- :func:`monotonic` — values read for a key never move backwards along a given order.

They compare times in real-time order only: operations that overlap are never held against
each other.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from racelab.harness.history import History, _short

__all__ = ["Anomaly", "Checker", "Result", "all_completed", "read_your_writes", "monotonic"]


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """A broken invariant: its name, one sentence naming the operations, and those operations."""

    invariant: str
    message: str
    ops: tuple = ()

    def __str__(self):
        return f"[{self.invariant}] {self.message}"


@dataclasses.dataclass(frozen=True)
class Result:
    """What a check found: ``valid``, ``anomalies``, the invariants held and the history's size."""

    anomalies: tuple
    invariants: tuple
    operations: int

    @property
    def valid(self) -> bool:
        return not self.anomalies

    def __bool__(self):
        return self.valid

    def report(self) -> str:
        """Return a summary line and one line per anomaly."""
        if self.valid:
            return (f"History valid: {_count(self.invariants, 'invariant')} held over "
                    f"{_count(range(self.operations), 'operation')} ({', '.join(self.invariants)}).")
        lines = [f"History invalid: {_count(self.anomalies, 'anomaly', 'anomalies')} over "
                 f"{_count(range(self.operations), 'operation')}."]
        return "\n".join(lines + [f"  {a}" for a in self.anomalies])

    def assert_valid(self) -> None:
        """Raise AssertionError with the report if any anomaly was found."""
        if not self.valid:
            raise AssertionError(self.report())


class Checker:
    """Named invariants over a history; ``Checker({"name": fn}, history=h)`` or :meth:`add` them."""

    def __init__(self, invariants: dict[str, Callable] | None = None, *, history: History | None = None):
        self.invariants: dict[str, Callable] = dict(invariants or {})
        self.history = history

    def add(self, name: str, fn: Callable | None = None):
        """Add invariant ``fn`` under ``name`` (replacing one of that name); usable as a decorator."""
        if fn is None:
            return lambda f: self.add(name, f)
        self.invariants[name] = fn
        return fn

    def check(self, history: History | None = None, state: Any = None) -> Result:
        """Run every invariant over ``history`` (default: the one given at construction) and ``state``."""
        history = self.history if history is None else history
        if history is None:
            raise ValueError("Checker.check() needs a history: pass one, or build Checker(history=...).")
        anomalies = []
        for name, fn in self.invariants.items():
            try:
                found = fn(history, state) or []
            except Exception as exc:
                raise RuntimeError(f"Invariant {name!r} raised {type(exc).__name__}: {exc}; fix the "
                                   f"invariant: it must return a list of Anomaly.") from exc
            # An invariant's own name wins, so one function can serve under several names.
            anomalies += [dataclasses.replace(a, invariant=name) for a in found]
        return Result(tuple(anomalies), tuple(self.invariants), len(history))


def _count(items, one, many=None):
    return f"{len(items)} {one if len(items) == 1 else many or one + 's'}"


def _key(value):
    return value.get("key") if isinstance(value, dict) else value


def _completed(history: History, f: str, types=("ok",)):
    return [(inv, done) for inv, done in history.pairs() if inv.f == f and done is not None and done.type in types]


def all_completed(history: History, state=None) -> list[Anomaly]:
    """Report each operation invoked but never completed by ok, fail or info."""
    return [Anomaly("all_completed",
                    f"{inv} was invoked at {inv.at} and never completed (no ok, fail or info): the "
                    f"actor hung, or raised outside history.op().", (inv,))
            for inv, done in history.pairs() if done is None]


def read_your_writes(write: str = "write", read: str = "read", *, key: Callable = _key,
                     sees: Callable[[Any, Any], bool] = lambda written, seen: written == seen) -> Callable:
    """Return an invariant: a read invoked after an ok write of its key completed must see that write.

    ``key(value)`` names what an operation is about (default: ``value["key"]`` for a dict, else the
    value); the read's key comes from its invoked value. The read is held against the latest such
    write only, through ``sees(written_value, read_value)``; writes that overlap it are ignored.
    """
    def invariant(history, state=None):
        writes = _completed(history, write)
        anomalies = []
        for r_inv, r_done in _completed(history, read):
            k = key(r_inv.value)
            before = [(w, d) for w, d in writes if key(d.value) == k and d.time < r_inv.time]
            if not before:
                continue
            w_inv, w_done = max(before, key=lambda pair: pair[1].time)
            if not sees(w_done.value, r_done.value):
                anomalies.append(Anomaly("read_your_writes", (
                    f"{r_inv.process}'s {read} of {_short(k)} returned {_short(r_done.value)} at "
                    f"{r_done.at}, after {w_inv.process}'s {write} of it returned ok with "
                    f"{_short(w_done.value)} at {w_done.at} (the read began at {r_inv.at})."),
                    (w_inv, w_done, r_inv, r_done)))
        return anomalies
    return invariant


def monotonic(f: str = "read", order=(), *, key: Callable = _key, value: Callable = lambda v: v) -> Callable:
    """Return an invariant: ``value(result)`` read for one key never moves backwards along ``order``.

    ``order`` lists the values from first to last; a tuple inside it is a set of equal ranks, e.g.
    ``("pending", "processing", ("completed", "failed"))``. Only ok reads are compared, and only
    when one completed before the other was invoked. A value outside ``order`` is an anomaly too.
    """
    ranks = {}
    for rank, item in enumerate(order):
        for v in item if isinstance(item, tuple) else (item,):
            ranks[v] = rank
    shown = " < ".join("|".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in order)

    def invariant(history, state=None):
        anomalies, reads = [], _completed(history, f)
        for b_inv, b_done in reads:
            seen = value(b_done.value)
            if seen not in ranks:
                anomalies.append(Anomaly("monotonic", f"{b_inv.process}'s {f} saw {seen!r} at {b_done.at}, "
                                         f"which is not in the order {shown}.", (b_inv, b_done)))
                continue
            earlier = [(a, d) for a, d in reads if key(a.value) == key(b_inv.value) and d.time < b_inv.time
                       and ranks.get(value(d.value), -1) > ranks[seen]]
            if earlier:
                a_inv, a_done = max(earlier, key=lambda pair: ranks[value(pair[1].value)])
                anomalies.append(Anomaly("monotonic", (
                    f"{b_inv.process}'s {f} of {_short(key(b_inv.value))} saw {seen!r} at {b_done.at}, after "
                    f"{a_inv.process}'s {f} of it saw {value(a_done.value)!r} at {a_done.at}: it moved "
                    f"backwards along {shown}."), (a_inv, a_done, b_inv, b_done)))
        return anomalies
    return invariant

