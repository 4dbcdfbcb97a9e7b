"""Run named actors at once, each in its own thread, and prove that they overlapped.

``run_concurrently({"writer": write, "reader": read}, timeout=30)`` starts one thread per actor,
named after it (so sync-point traces and histories speak of ``writer`` and ``reader``), releases
them together from a barrier, and waits for all. It re-raises the first failure as
:class:`ActorError` naming the actor, and raises :class:`ActorTimeout` naming those still running
(and, when a sync-points controller is installed, what they wait for) instead of hanging.
It does not kill threads that outlive the timeout: Python cannot; they are daemons and keep
whatever they hold.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable

from racelab.harness import race

__all__ = ["run_concurrently", "RunResult", "ActorRun", "ActorError", "ActorTimeout"]


class ActorError(Exception):
    """Raised by :func:`run_concurrently` when an actor raised; ``actor`` names it, ``__cause__`` is the error."""

    def __init__(self, message, actor, result):
        super().__init__(message)
        self.actor, self.result = actor, result


class ActorTimeout(TimeoutError):
    """Raised by :func:`run_concurrently` when actors are still running at the timeout."""

    def __init__(self, message, actors, result):
        super().__init__(message)
        self.actors, self.result = actors, result


@dataclasses.dataclass
class ActorRun:
    """One actor's run: ``start``/``end`` (``time.monotonic()``, None if never reached), value, error."""

    name: str
    start: float | None = None
    end: float | None = None
    value: Any = None
    error: BaseException | None = None


@dataclasses.dataclass
class RunResult:
    """The actors' runs by name, with their values and the proof of overlap."""

    actors: dict[str, ActorRun]

    @property
    def values(self) -> dict[str, Any]:
        """Return each actor's return value by name."""
        return {name: run.value for name, run in self.actors.items()}

    def overlapped(self) -> bool:
        """Return whether every actor had started before any actor ended (all ran at one instant)."""
        runs = self.actors.values()
        if any(r.start is None or r.end is None for r in runs):
            return False
        return max(r.start for r in runs) < min(r.end for r in runs)

    def timeline(self) -> str:
        """Return one line per actor: start and end in ms from the earliest start."""
        starts = [r.start for r in self.actors.values() if r.start is not None]
        origin = min(starts) if starts else 0.0

        def ms(t):
            return "-" if t is None else f"{(t - origin) * 1000:.1f}ms"
        return "\n".join(f"    {r.name:<16} {ms(r.start):>10} → {ms(r.end):>10}" + (f"  raised {r.error!r}" if r.error else "")
                         for r in self.actors.values())


def run_concurrently(actors: dict[str, Callable[[], Any]], timeout: float = 30.0, *,
                     teardown: Callable[[], None] | None = None) -> RunResult:
    """Run each actor in a thread named after it, all released together, and return their runs.

    ``teardown`` is called at the end of every actor's thread, even after a failure (for example
    ``django.db.connections.close_all``). Raises :class:`ActorError` for the first actor to fail
    (by end time) and :class:`ActorTimeout` if any is still running after ``timeout`` seconds.
    """
    __tracebackhide__ = True
    if not actors:
        raise ValueError("run_concurrently needs at least one actor, as {'name': callable}.")
    runs = {name: ActorRun(name) for name in actors}
    barrier = threading.Barrier(len(actors))

    def body(name, func):
        run = runs[name]
        try:
            barrier.wait(timeout)
            run.start = time.monotonic()
            run.value = func()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, with the actor's name
            run.error = exc
        finally:
            run.end = time.monotonic()
            if teardown is not None:
                teardown()

    threads = [threading.Thread(target=body, args=(name, func), name=name, daemon=True)
               for name, func in actors.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    result = RunResult(runs)

    alive = [t.name for t in threads if t.is_alive()]
    if alive:
        raise ActorTimeout(_timeout_message(alive, timeout, result), alive, result)
    failed = sorted((r for r in runs.values() if r.error is not None), key=lambda r: r.end)
    if failed:
        first = failed[0]
        others = "".join(f"; {r.name!r} also raised {type(r.error).__name__}" for r in failed[1:])
        message = f"Actor {first.name!r} raised {type(first.error).__name__}: {first.error}{others}"
        raise ActorError(message, first.name, result) from first.error
    return result


def _timeout_message(alive, timeout, result):
    lines = [f"Actors still running after {timeout:g} s: {', '.join(map(repr, alive))}."]
    waiting = getattr(race.installed(), "waiting", None)
    waits = [w for w in (waiting() if waiting else []) if w.actor.rpartition(":")[2] in alive or w.actor in alive]
    if waits:
        lines += [f"  {w}" for w in waits]
    else:
        lines.append("  None of them waits at a sync point: look for a lock, a queue or a loop in their code.")
    lines += ["Timeline:", result.timeline(),
              "Raise the limit with run_concurrently(..., timeout=...) or --race-timeout SECONDS."]
    return "\n".join(lines)
