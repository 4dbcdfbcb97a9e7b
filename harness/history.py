"""Record what each actor did as a history of operations, after Jepsen.

An operation is invoked by a process (an actor's name, e.g. ``"writer#1"``) and then completes
once: ``ok`` (it happened, with this value), ``fail`` (it certainly did not happen) or ``info``
(unknown: it crashed or timed out, and may or may not have taken effect). Each event is an
:class:`Op` with a monotonic ``time`` in seconds since the history began. A process has at most
one operation in flight; use one process name per concurrent actor.

    with history.op("writer#1", "import", {"key": 7}) as op:
        op.ok({"key": 7, "tasks": import_file(7)})

Histories round-trip through JSON Lines (:meth:`History.dump`, :meth:`History.load`); values must
be JSON-ready, anything else is written as its ``repr``. Recording never checks anything: see
:mod:`racelab.harness.checker`.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

__all__ = ["History", "Op", "INDETERMINATE"]

TYPES = ("invoke", "ok", "fail", "info")

#: Exceptions after which an operation may or may not have happened: recorded as ``info``.
INDETERMINATE = (TimeoutError, ConnectionError)


@dataclasses.dataclass(frozen=True)
class Op:
    """One history event: ``index``, ``type`` (invoke/ok/fail/info), ``process``, ``f``, ``value``, ``time``, ``error``."""

    index: int
    type: str
    process: str
    f: str
    value: Any = None
    time: float = 0.0
    error: str | None = None

    def __str__(self):
        return f"{self.process}'s {self.f} of {_short(self.value)}"

    @property
    def at(self) -> str:
        """Return the time as ``t=12.3ms``."""
        return f"t={self.time * 1000:.1f}ms"


def _short(value, limit=60):
    text = json.dumps(value, default=repr, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


class History:
    """A thread-safe, append-only list of operations; see the module docstring."""

    def __init__(self, ops=()):
        self.ops: list[Op] = list(ops)
        self._lock = threading.Lock()
        # Loaded histories go on from their last time, so that new operations sort after old ones.
        self._start = time.monotonic() - (self.ops[-1].time if self.ops else 0.0)
        self._open: dict[str, Op] = {}
        for invoke, completion in self.pairs():
            if completion is None:
                self._open[invoke.process] = invoke

    def clear(self) -> None:
        """Forget every operation and start the clock again, as a new history would (one per explored run)."""
        with self._lock:
            self.ops, self._open, self._start = [], {}, time.monotonic()

    def _append(self, type_, process, f, value, error=None) -> Op:
        with self._lock:
            op = Op(len(self.ops), type_, str(process), f, value, time.monotonic() - self._start, error)
            self.ops.append(op)
            return op

    def in_flight(self, process) -> Op | None:
        """Return the process's invoked operation that has not completed yet, or None."""
        with self._lock:
            return self._open.get(str(process))

    def invoke(self, process, f: str, value=None) -> Op:
        """Record that ``process`` starts ``f`` with ``value``; raise if it has one in flight already."""
        with self._lock:
            pending = self._open.get(str(process))
            if pending is not None:
                raise RuntimeError(
                    f"{process!r} invokes {f!r} while its {pending.f!r} (op #{pending.index}) has not "
                    f"completed: complete it with ok/fail/info first, or give each concurrent actor "
                    f"its own process name.")
        op = self._append("invoke", process, f, value)
        with self._lock:
            self._open[op.process] = op
        return op

    def _complete(self, type_, process, value, f, error) -> Op:
        with self._lock:
            pending = self._open.pop(str(process), None)
        if pending is None:
            raise RuntimeError(f"{process!r} completes an operation it never invoked: call invoke() first.")
        return self._append(type_, process, f or pending.f, pending.value if value is None else value, error)

    def ok(self, process, value=None, *, f: str | None = None) -> Op:
        """Record that the process's operation happened, returning ``value`` (default: the invoked value)."""
        return self._complete("ok", process, value, f, None)

    def fail(self, process, value=None, *, f: str | None = None, error=None) -> Op:
        """Record that the process's operation certainly did not happen."""
        return self._complete("fail", process, value, f, None if error is None else str(error))

    def info(self, process, value=None, *, f: str | None = None, error=None) -> Op:
        """Record that the process's operation may or may not have happened (crash, timeout)."""
        return self._complete("info", process, value, f, None if error is None else str(error))

    def op(self, process, f: str, value=None, *, reraise: bool = True) -> _Operation:
        """Return a context manager that invokes ``f`` and completes it however the block ends.

        Inside, call ``op.ok(result)``, ``op.fail(...)`` or ``op.info(...)``. A block that ends
        without one records ``ok`` with the invoked value; one that raises records ``info`` for
        :data:`INDETERMINATE` errors and non-``Exception`` crashes, ``fail`` otherwise, then
        re-raises unless ``reraise=False``.
        """
        return _Operation(self, process, f, value, reraise)

    def pairs(self, f: str | None = None, *, ok: bool = False) -> list[tuple[Op, Op | None]]:
        """Return each invocation with its completion (None while none was recorded).

        ``f`` keeps only the operations of that name; ``ok=True`` only those that completed ok.
        """
        pairs, open_ = [], {}
        for op in list(self.ops):
            if op.type == "invoke":
                open_[op.process] = len(pairs)
                pairs.append([op, None])
            elif op.process in open_:
                pairs[open_.pop(op.process)][1] = op
        return [(inv, done) for inv, done in pairs
                if (f is None or inv.f == f) and (not ok or (done is not None and done.type == "ok"))]

    def __iter__(self):
        return iter(list(self.ops))

    def __len__(self):
        return len(self.ops)

    def dump(self, path) -> None:
        """Write the history as JSON Lines, one operation a line (overwriting ``path``)."""
        with open(path, "w", encoding="utf-8") as out:
            for op in list(self.ops):
                out.write(json.dumps(dataclasses.asdict(op), default=repr) + "\n")

    @classmethod
    def load(cls, path) -> History:
        """Read a history written by :meth:`dump`."""
        with open(path, encoding="utf-8") as src:
            return cls(Op(**json.loads(line)) for line in src if line.strip())


class _Operation:
    def __init__(self, history, process, f, value, reraise):
        self.history, self.process, self.f, self.value, self.reraise = history, process, f, value, reraise
        self.completion: Op | None = None

    def __enter__(self):
        self.invocation = self.history.invoke(self.process, self.f, self.value)
        return self

    def ok(self, value=None) -> Op:
        self.completion = self.history.ok(self.process, value)
        return self.completion

    def fail(self, value=None, error=None) -> Op:
        self.completion = self.history.fail(self.process, value, error=error)
        return self.completion

    def info(self, value=None, error=None) -> Op:
        self.completion = self.history.info(self.process, value, error=error)
        return self.completion

    def __exit__(self, exc_type, exc, tb):
        if self.completion is not None:
            return False
        if exc is None:
            self.ok()
            return False
        error = f"{exc_type.__name__}: {exc}"
        if isinstance(exc, INDETERMINATE) or not isinstance(exc, Exception):
            self.info(error=error)
        else:
            self.fail(error=error)
        return not self.reraise and isinstance(exc, Exception)
