"""Explore interleavings of race points with a seeded scheduler: random or PCT.

``Scheduler(seed=N, strategy="pct", depth=2).run({"a": fa, "b": fb})`` runs the actors one at a
time. Each starts parked; at every race point the running actor parks again and the strategy
picks which parked actor runs next, so the interleaving is a pure function of the seed. Every
choice lands in :attr:`Scheduler.decisions`; the same seed on the same code makes the same
decisions, which is how a failing run replays (``pytest --race-seed N <test>``).

An actor that has not reached its next race point ``blocked_after`` seconds after it was let go
(it waits on a lock held by a parked actor, or on a sync-points ordering) is marked blocked and
the others go on; it rejoins when it reaches a point. So the scheduler never deadlocks the
actors itself, but blocking makes the interleaving depend on timing (each block is recorded).

Strategies (:data:`STRATEGIES`):

- ``random`` — pick uniformly among the parked actors;
- ``pct`` — Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
  ASPLOS 2010): random distinct priorities ``d .. d+n-1``, always run the highest; at ``d-1``
  random steps out of ``k`` the actor about to run drops to priority ``i`` (the i-th change).
  It finds a bug of depth ``d`` with probability at least ``1 / (n * k**(d-1))`` per run, for
  ``n`` actors and ``k`` steps (set ``steps`` to about the race points all actors pass in a run).

Hits from threads that are not actors are not scheduled; every hit is then passed on to the
controller that was installed before (e.g. ``sync_points``), whose orderings and trace still apply.
"""
from __future__ import annotations

import dataclasses
import random
import re
import threading

from racelab.harness.rules import Wait
from racelab.harness.runner import ActorError, ActorTimeout, RunResult, run_concurrently
from racelab.harness import race

__all__ = ["Scheduler", "Decision", "STRATEGIES", "replay_command"]

STRATEGIES = ("random", "pct")
_START = "(start)"


@dataclasses.dataclass(frozen=True)
class Decision:
    """One choice: in ``run``, at ``step``, ``actor`` was let go from ``point`` (kind ``run``) or marked ``blocked``."""

    run: int
    step: int
    kind: str
    actor: str
    point: str
    ready: tuple = ()

    def __str__(self):
        if self.kind == "blocked":
            return f"run {self.run} step {self.step}: {self.actor} blocked after leaving {self.point!r}"
        return f"run {self.run} step {self.step}: {self.actor} from {self.point!r} (ready: {', '.join(self.ready)})"


class _Random:
    def __init__(self, rng, depth, steps):
        self.rng = rng

    def start(self, actors):
        pass

    def choose(self, ready, step):
        return self.rng.choice(ready)


class _PCT:
    def __init__(self, rng, depth, steps):
        self.rng, self.depth, self.steps = rng, depth, steps

    def start(self, actors):
        priorities = list(range(self.depth, self.depth + len(actors)))
        self.rng.shuffle(priorities)
        self.priority = dict(zip(actors, priorities))
        points = sorted(self.rng.sample(range(1, self.steps + 1), min(self.depth - 1, self.steps)))
        self.changes = {step: i for i, step in enumerate(points, start=1)}

    def choose(self, ready, step):
        best = max(ready, key=self.priority.__getitem__)
        if step in self.changes:
            self.priority[best] = self.changes[step]
            best = max(ready, key=self.priority.__getitem__)
        return best


_STRATEGY_CLASSES = {"random": _Random, "pct": _PCT}


def replay_command(seed: int, nodeid: str | None) -> str:
    """Return the pytest command that replays ``seed`` for the test ``nodeid`` (its seed id removed)."""
    if not nodeid:
        return f"pytest --race-seed {seed} -k <test>"
    nodeid = re.sub(r"\[(.*)\]$", lambda m: _without_seed(m.group(1)), nodeid)
    return f"pytest --race-seed {seed} '{nodeid}'"


def _without_seed(ids):
    rest = "-".join(part for part in ids.split("-") if not re.fullmatch(r"seed=\d+", part))
    return f"[{rest}]" if rest else ""


class Scheduler:
    """A seeded random/PCT scheduler over race points; see the module docstring.

    ``Scheduler(seed=None, strategy="pct", depth=2, steps=20, timeout=30.0, blocked_after=0.1)``;
    a None seed draws one (read it from :attr:`seed`). :meth:`run` installs the scheduler only
    while the actors run.
    """

    def __init__(self, seed: int | None = None, strategy: str = "pct", *, depth: int = 2, steps: int = 20,
                 timeout: float = 30.0, blocked_after: float = 0.1, teardown=None, nodeid: str | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown scheduling strategy {strategy!r}: use one of {', '.join(STRATEGIES)} "
                             f"(--race-strategy or @pytest.mark.race(strategy=...)).")
        if depth < 1 or steps < 1:
            raise ValueError(f"PCT needs depth >= 1 and steps >= 1, got depth={depth}, steps={steps}.")
        self.seed = random.SystemRandom().randrange(2**32) if seed is None else int(seed)
        self.strategy_name, self.depth, self.steps = strategy, depth, steps
        self.timeout, self.blocked_after, self.teardown, self.nodeid = timeout, blocked_after, teardown, nodeid
        self.decisions: list[Decision] = []
        self._strategy = _STRATEGY_CLASSES[strategy](random.Random(self.seed), depth, steps)
        self._cv = threading.Condition()
        self._runs = 0
        self._actors: dict[int, str] = {}
        self._next = None
        self._reset(())

    def _reset(self, names):
        self._names, self._starting, self._done = tuple(names), set(names), set()
        self._parked: dict[str, str] = {}
        self._blocked: set[str] = set()
        self._running = None
        self._closing = not names

    @property
    def replay(self) -> str:
        """Return the command that replays this scheduler's seed."""
        return replay_command(self.seed, self.nodeid)

    def describe(self, last: int = 30) -> str:
        """Return the seed, the replay command and the last decisions, one per line."""
        lines = [f"seed={self.seed} strategy={self.strategy_name} depth={self.depth} steps={self.steps}",
                 f"Replay: {self.replay}"] + [f"  {d}" for d in self.decisions[-last:]]
        return "\n".join(lines)

    def run(self, actors: dict, timeout: float | None = None, *, teardown=None) -> RunResult:
        """Run the actors under the schedule and return their runs; see :func:`racelab.harness.runner.run_concurrently`.

        Errors get a note with the seed and the replay command. Does not catch the actors' errors.
        """
        __tracebackhide__ = True
        names = sorted(actors)
        with self._cv:
            self._runs += 1
            self._reset(names)
            self._actors.clear()
        self._strategy.depth, self._strategy.steps = self.depth, self.steps
        self._strategy.start(names)
        self._next = race.install(self)
        loop = threading.Thread(target=self._loop, name="racelab-scheduler", daemon=True)
        loop.start()
        try:
            return run_concurrently({name: self._wrap(name, actors[name]) for name in names},
                                    self.timeout if timeout is None else timeout,
                                    teardown=teardown or self.teardown)
        except (ActorError, ActorTimeout) as exc:
            exc.add_note(self.describe())
            raise
        finally:
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            loop.join()
            if race.installed() is self:
                race.install(self._next)

    def _wrap(self, name, func):
        def actor():
            self._actors[threading.get_ident()] = name
            self._park(name, _START)
            try:
                return func()
            finally:
                self._finish(name)
        return actor

    def hit(self, name: str, context: dict) -> None:
        """Park the calling actor until the strategy picks it, then pass the hit on."""
        actor = self._actors.get(threading.get_ident())
        if actor is not None and actor in self._names:
            self._park(actor, name)
        if self._next is not None:
            self._next.hit(name, context)

    def waiting(self) -> list[Wait]:
        """Return the parked actors (waiting for their turn) and whatever the next controller holds."""
        with self._cv:
            waits = [Wait(a, p, {}, ("its turn from the scheduler",), 0.0) for a, p in self._parked.items()]
        return waits + (self._next.waiting() if hasattr(self._next, "waiting") else [])

    def _park(self, me, point):
        with self._cv:
            if self._closing:
                return
            self._starting.discard(me)
            self._blocked.discard(me)
            if self._running == me:
                self._running = None
            self._parked[me] = point
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._closing or self._running == me)
            self._parked.pop(me, None)

    def _finish(self, me):
        with self._cv:
            self._starting.discard(me)
            self._blocked.discard(me)
            if self._running == me:
                self._running = None
            self._done.add(me)
            self._cv.notify_all()

    def _loop(self):
        step, cv = 0, self._cv
        with cv:
            while not self._closing:
                settled = cv.wait_for(lambda: self._closing or (self._running is None and not self._starting),
                                      timeout=self.blocked_after)
                if self._closing:
                    return
                if not settled:
                    if self._running is not None:
                        self.decisions.append(Decision(self._runs, step, "blocked", self._running, self._left_from))
                        self._blocked.add(self._running)
                        self._running = None
                    continue
                ready = sorted(self._parked)
                if not ready:
                    if len(self._done) == len(self._names):
                        return
                    cv.wait_for(lambda: self._closing or self._parked or len(self._done) == len(self._names))
                    continue
                step += 1
                chosen = self._strategy.choose(ready, step)
                self._left_from = self._parked.pop(chosen)
                self.decisions.append(Decision(self._runs, step, "run", chosen, self._left_from, tuple(ready)))
                self._running = chosen
                cv.notify_all()
