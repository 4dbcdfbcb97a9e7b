"""Force an interleaving of race points, after RocksDB's ``SyncPoint``.

A :class:`SyncPoints` controller, once enabled, receives every
``racelab.harness.race.race_point(name, **context)`` of this process and
applies its rules there:

- ``order(("A", "B"))`` — whoever reaches B waits until some actor passed A;
- ``on("A", callback)`` — call ``callback(context)`` at A;
- ``delay("A", 0.2)`` — hold the actor at A for 0.2 s before it passes;
- ``fail("A", exc)`` — raise ``exc`` at A (after recording the pass).

Every pass lands in :attr:`SyncPoints.trace` (point, actor, monotonic time,
context, time spent waiting, what was done there), which
:meth:`SyncPoints.assert_order` reads to prove the forced interleaving really
happened. A wait longer than ``timeout`` raises :class:`SyncPointTimeout`
naming who waits where for what; nothing ever hangs.

A point is a name, or a name with a filter on the context:
``("rq.job.start", {"job": "myapp.jobs.run"})`` matches only hits whose context has
those items; ``("rq.job.start", predicate)`` matches when ``predicate(context)``
is true (predicates do not cross processes). The rule logic here is shared
with :class:`racelab.harness.remote.RemoteSyncPoints`, which keeps the same rules and
trace in Redis so that other processes obey them.

Worked example: ``tests/harness/test_syncpoints.py::test_order_is_obeyed``.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback

from racelab.harness.rules import Action, Hit, Point, Rules, Wait, format_trace, point
from racelab.harness import race

__all__ = ["BaseSyncPoints", "SyncPoints", "SyncPointTimeout"]

TIMEOUT_HINT = (
    "Check that some actor reaches the missing point on this code path, with the controller "
    "installed in its process (threads: sync_points; other processes: remote_sync_points and "
    "racelab.harness.remote.install_from_env()), or raise the limit with --race-timeout SECONDS."
)


def thread_stacks(frames=6):
    """Return the innermost ``frames`` frames of every thread but the caller's, one indented block each.

    For a timeout's message: an actor that never reached its point is often found
    blocked somewhere else (a lock, a socket, an idle loop). A thread that keeps a list of
    ``worker_errors`` (an RQ worker thread: errors that lost the job it had taken) shows them too.
    """
    current = sys._current_frames()
    blocks = []
    for thread in threading.enumerate():
        frame = current.get(thread.ident)
        if thread is threading.current_thread() or frame is None:
            continue
        where = "".join(traceback.format_list(traceback.extract_stack(frame)[-frames:]))
        blocks.append(f"  {thread.name!r}:\n" + "\n".join("    " + line for line in where.rstrip().splitlines()))
        for error in getattr(thread, "worker_errors", ()):
            frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
            at = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
            blocks.append(f"    it met (RQ only logged it, and dropped the job it held): {error!r}{at}")
    return "\n".join(blocks)


class SyncPointTimeout(TimeoutError):
    """Raised in an actor that waited past the timeout for a predecessor point."""


class BaseSyncPoints:
    """The rule logic of a sync-points controller; subclasses say where rules, waits and the trace live.

    Subclasses implement ``_rules()``, ``_change(fn)``, ``_record(hit)``, ``_enter(wait)`` (list a
    waiter, giving a token), ``_block(before, deadline)`` (the points still missing at the end),
    ``_leave(token)``, ``trace``, ``waiting()`` and ``_actor()``. This class does not install
    itself anywhere.
    """

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.timeouts: list[SyncPointTimeout] = []
        self._enabled = False
        self._previous = None

    # -- rules ------------------------------------------------------------------------------

    def order(self, *orderings) -> None:
        """Make whoever reaches each later point wait until some actor passed the one before it.

        Each ordering is a tuple of two or more points, ``("A", "B", "C")`` meaning A before B
        before C. Once A was passed, B is free for good: a pass is not consumed by a waiter.
        """
        pairs = []
        for ordering in orderings:
            if isinstance(ordering, str) or (len(ordering) == 2 and not isinstance(ordering[1], (str, Point, tuple, list))):
                raise ValueError(f"{ordering!r} is one point, not an ordering: write order((A, B)), e.g. "
                                 f"order((('rq.job.start', {{'job': 'myapp.jobs.run'}}), 'reader.check')).")
            points = [point(spec) for spec in ordering]
            if len(points) < 2:
                raise ValueError(f"An ordering needs two points or more, got {ordering!r}.")
            pairs += zip(points, points[1:])
        self._change(lambda rules: Rules(rules.orders + tuple(pairs), rules.actions))

    def on(self, name, callback, *, label: str = "") -> None:
        """Call ``callback(context)`` at the point, before the pass is recorded (after any wait)."""
        self._add(Action(point(name), "call", callback, label))

    def delay(self, name, seconds: float, *, label: str = "") -> None:
        """Hold every actor at the point for ``seconds`` before its pass is recorded."""
        self._add(Action(point(name), "delay", float(seconds), label))

    def meet(self, name, parties: int = 2, *, label: str = "") -> None:
        """Hold each actor that reaches the point until ``parties`` actors have reached it: all arrive before any passes.

        A rendezvous, for "both read before either writes", which one-way orderings cannot say
        (an actor's own pass would satisfy them). Each arrival is recorded as ``<name>:arrived``;
        actors that come after the rendezvous pass at once.
        """
        if parties < 2:
            raise ValueError(f"A meeting needs two parties or more, got {parties}.")
        self._add(Action(point(name), "meet", int(parties), label))

    def fail(self, name, exc, *, label: str = "") -> None:
        """Raise ``exc`` (an exception instance or class) at the point, after recording the pass.

        The pass counts: actors ordered after the point are released, as they would be by a
        real failure there.
        """
        self._add(Action(point(name), "fail", exc, label))

    def _add(self, action: Action) -> None:
        self._change(lambda rules: Rules(rules.orders, rules.actions + (action,)))

    # -- the hit ----------------------------------------------------------------------------

    def hit(self, name: str, context: dict) -> None:
        """Wait for predecessors, run the actions, record the pass, then fail or exit if told to."""
        __tracebackhide__ = True
        rules = self._rules()
        if rules is None:
            return
        actor = self._actor()
        waited = 0.0
        before = rules.predecessors(name, context)
        if before:
            waited = self._await(actor, name, context, before)
        notes, finish = [], None
        for action in rules.actions_for(name, context):
            notes.append(action.note())
            if action.kind == "meet":
                self._record(Hit(action.arrival.name, actor, time.monotonic(), dict(context)))
                waited += self._await(actor, name, context, [action.arrival])
            else:
                finish = action.run(context) or finish
        self._record(Hit(name, actor, time.monotonic(), dict(context), waited, tuple(notes)))
        if finish is not None:
            finish()

    def wait(self, spec, timeout: float | None = None) -> None:
        """Block the caller until some actor has passed the point; record nothing."""
        self._await(self._actor(), "(wait)", {}, [point(spec)], timeout)

    def _await(self, actor, name, context, before, timeout=None) -> float:
        __tracebackhide__ = True
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        wait = Wait(actor, name, context, tuple(str(p) for p in before), start)
        token = self._enter(wait)
        try:
            missing = self._block(before, start + timeout)
            if missing:  # explained while still listed as waiting, so a partner timing out too names this one
                error = SyncPointTimeout(self._explain(wait, before, missing, time.monotonic() - start))
                self.timeouts.append(error)
                raise error
        finally:
            self._leave(token)
        return time.monotonic() - start

    def _explain(self, wait, before, missing, waited) -> str:
        hits = self.trace
        lines = [f"{wait.actor!r} waited {waited:.3g} s at {wait.point!r}"
                 + (f" {wait.context}" if wait.context else "")
                 + f" for {', '.join(str(p) for p in before)}."]
        for p in missing:
            by_name = [h for h in hits if h.point == p.name]
            if by_name:
                seen = "; ".join(str(h.context) for h in by_name[:3])
                lines.append(f"Never reached: {p} (passed only with other contexts: {seen}).")
            else:
                lines.append(f"Never reached: {p}.")
        others = [w for w in self.waiting() if w.actor != wait.actor or w.point != wait.point]
        if others:
            lines.append("Also waiting: " + "; ".join(str(w) for w in others)
                         + " (a cycle among these orderings deadlocks by construction).")
        lines += ["Trace:", format_trace(hits)]
        stacks = thread_stacks()
        if stacks:
            lines += ["Where the other threads of this process are (innermost frames last):", stacks]
        lines.append(TIMEOUT_HINT)
        return "\n".join(lines)

    # -- reading the trace ------------------------------------------------------------------

    def passed(self, spec) -> int:
        """Return how many times the point was passed (0 if never)."""
        p = point(spec)
        return sum(1 for h in self.trace if p.matches(h.point, h.context))

    def assert_order(self, *specs) -> None:
        """Assert that each point was passed, each one's first pass after the previous one's.

        Raises AssertionError quoting the trace otherwise; it does not wait for anything.
        """
        hits = self.trace
        points = [point(spec) for spec in specs]
        firsts = []
        for p in points:
            index = next((i for i, h in enumerate(hits) if p.matches(h.point, h.context)), None)
            if index is None:
                raise AssertionError(
                    f"{p} was never passed, so the order {' < '.join(map(str, points))} did not "
                    f"happen. Is its race point on the code path, with a controller installed in "
                    f"that process?\nTrace:\n{format_trace(hits)}")
            firsts.append(index)
        for (a, i), (b, j) in zip(zip(points, firsts), zip(points[1:], firsts[1:])):
            if j <= i:
                raise AssertionError(
                    f"{b} was first passed at #{j} by {hits[j].actor!r}, before {a} at #{i} by "
                    f"{hits[i].actor!r}: the order {' < '.join(map(str, points))} was not forced. "
                    f"Set sync_points.order(...) before the actors start.\nTrace:\n{format_trace(hits)}")

    # -- installation -----------------------------------------------------------------------

    def enable(self):
        """Install this controller in this process (remembering the one it replaces) and return it."""
        self._enabled = True
        self._previous = race.install(self)
        return self

    def disable(self) -> None:
        """Uninstall, restoring the previous controller, and release every waiting actor.

        Released actors pass without their predecessors; nothing is raised in them.
        """
        self._enabled = False
        if race.installed() is self:
            race.install(self._previous)
        self._previous = None
        self._release()

    def __enter__(self):
        return self.enable()

    def __exit__(self, *exc_info):
        self.disable()

    def _actor(self) -> str:
        return threading.current_thread().name


class SyncPoints(BaseSyncPoints):
    """Sync points for the threads of this process, kept in memory under one Condition.

    ``SyncPoints(timeout=30.0)``; use it as ``with SyncPoints() as sp:`` or through the
    ``sync_points`` fixture. Other processes do not see it: use ``remote_sync_points`` for them.
    ``trace_limit`` bounds the kept trace (for long-lived served processes); orderings can only
    see passes still in it.
    """

    def __init__(self, timeout: float = 30.0, *, rules: Rules | None = None, trace_limit: int | None = None):
        super().__init__(timeout)
        self.rules = rules or Rules()
        self._trace: list[Hit] = []
        self._trace_limit = trace_limit
        self._waits: dict[object, Wait] = {}
        self._cv = threading.Condition()

    def _rules(self):
        return self.rules if self._enabled else None

    def _change(self, fn) -> None:
        with self._cv:
            self.rules = fn(self.rules)

    def _record(self, hit: Hit) -> None:
        with self._cv:
            self._trace.append(hit)
            if self._trace_limit and len(self._trace) > self._trace_limit:
                del self._trace[: len(self._trace) - self._trace_limit]
            self._cv.notify_all()

    def _missing(self, before):
        return [p for p in before if sum(1 for h in self._trace if p.matches(h.point, h.context)) < p.times]

    def _enter(self, wait):
        with self._cv:
            key = object()
            self._waits[key] = wait
            return key

    def _leave(self, key):
        with self._cv:
            del self._waits[key]

    def _block(self, before, deadline):
        with self._cv:
            self._cv.wait_for(lambda: not self._enabled or not self._missing(before),
                              timeout=max(0.0, deadline - time.monotonic()))
            return self._missing(before) if self._enabled else []

    def _release(self) -> None:
        with self._cv:
            self._cv.notify_all()

    @property
    def trace(self) -> list[Hit]:
        """Return a copy of the passes so far, in the order they happened."""
        with self._cv:
            return list(self._trace)

    def waiting(self) -> list[Wait]:
        """Return the actors now held at a point, and what each waits for."""
        with self._cv:
            return list(self._waits.values())

    def clear(self) -> None:
        """Drop every rule and the trace; waiting actors re-check and may then time out."""
        with self._cv:
            self.rules, self._trace = Rules(), []
            self._cv.notify_all()
