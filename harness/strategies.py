"""How the scheduler picks who runs next, and where it injects a fault: seeded strategies and replays.

Each strategy sees the ready actors (in the order they first appeared) and each one's pending
point, and returns the actor to let go:

- ``pos`` — partial order sampling (after Yuan et al., 2018): every pending step gets a random
  priority and the highest runs; when a step runs, the pending steps that conflict with it
  (:mod:`racelab.harness.conflicts`) draw new priorities, so a race between two pending steps
  is decided by a fair coin, however long the actors are. Two refinements of ours: a step that
  touches nothing shared runs without a decision; and a step that does not race with another
  actor's next step, but will race with one of its later ones (as the previous run of that actor
  showed), waits while that actor goes on, so that the two meet as pending steps and a coin
  decides their order, instead of the earlier step slipping past unseen. The default.
- ``pct`` — probabilistic concurrency testing (Burckhardt et al., 2010): random actor priorities
  and ``depth - 1`` priority change points among the first ``steps`` steps.
- ``random`` — a uniform choice among the ready actors at every point: the baseline at the same
  points.
- ``replay`` — a recorded :class:`Schedule`: the default choice (keep the current actor while
  it is ready, else the first ready one) except where the schedule says otherwise.

Faults are choices too (:class:`Faults`): at most one per run, at the k-th point where one of
the allowed kinds can happen, k drawn between 1 and the number of such points a fault-free run
showed (the first run, a probe, injects none and counts them).
"""
from __future__ import annotations

import dataclasses
import re

from racelab.harness.conflicts import NOTHING, access, conflict

__all__ = ["STRATEGIES", "FAULT_KINDS", "Schedule", "Faults", "make", "default_choice"]

STRATEGIES = ("pos", "pct", "random", "free")
#: The faults a run may explore, and the points where each can happen.
FAULT_KINDS = {
    "enqueue": "fail an enqueue at rq.enqueue, as if Redis were down",
    "kill": "kill the worker running a job, at any point of the job",
    "drop": "drop the database connection just before a transaction's COMMIT",
}


def default_choice(ready, current):
    """Return the choice that makes no switch: the current actor while it is ready, else the first ready one."""
    return current if current in ready else ready[0]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The choices of one run that differ from :func:`default_choice`, and its fault: enough to replay it.

    ``choices`` is ``((step, actor), ...)``, ``fault`` is ``(step, kind)`` or None. Encoded as
    text (``3=reader#1;7=writer#1;fault=5:kill``) it travels on a command line.
    """

    choices: tuple = ()
    fault: tuple | None = None
    switches: int = 0

    def encode(self) -> str:
        parts = [f"{step}={actor}" for step, actor in self.choices]
        if self.fault:
            parts.append(f"fault={self.fault[0]}:{self.fault[1]}")
        return ";".join(parts) or "-"

    @classmethod
    def decode(cls, text: str) -> Schedule:
        """Parse :meth:`encode`'s text; raise ValueError naming the bad part."""
        choices, fault = [], None
        for part in filter(None, (text or "").strip().split(";")):
            if part == "-":
                continue
            match = re.fullmatch(r"fault=(\d+):(\w+)|(\d+)=(.+)", part.strip())
            if not match:
                raise ValueError(f"Bad schedule part {part!r}: write STEP=ACTOR or fault=STEP:KIND, joined by ';'.")
            if match[1]:
                if match[2] not in FAULT_KINDS:
                    raise ValueError(f"Unknown fault {match[2]!r} in {part!r}: use one of {', '.join(FAULT_KINDS)}.")
                fault = (int(match[1]), match[2])
            else:
                choices.append((int(match[3]), match[4]))
        return cls(tuple(choices), fault)


class _Random:
    def __init__(self, rng, depth, steps):
        self.rng = rng

    def start(self, actors):
        pass

    def choose(self, ready, pending, step, current, futures=None):
        return self.rng.choice(ready)


class _PCT:
    def __init__(self, rng, depth, steps):
        self.rng, self.depth, self.steps = rng, depth, steps

    def start(self, actors):
        self.priority = {}
        self.next_low = self.depth - 1
        points = sorted(self.rng.sample(range(1, self.steps + 1), min(self.depth - 1, self.steps)))
        self.changes = {step: i for i, step in enumerate(points, start=1)}

    def _priority(self, actor):
        if actor not in self.priority:  # a new actor (a worker's job) gets a random high priority
            self.priority[actor] = self.depth + self.rng.random() * 1000
        return self.priority[actor]

    def choose(self, ready, pending, step, current, futures=None):
        best = max(ready, key=self._priority)
        if step in self.changes:
            self.priority[best] = self.changes[step]
            best = max(ready, key=self._priority)
        return best


class _POS:
    def __init__(self, rng, depth, steps):
        self.rng = rng

    def start(self, actors):
        self.priority = {}  # actor -> priority of its pending step

    def choose(self, ready, pending, step, current, futures=None):
        accesses = {actor: access(*pending[actor]) for actor in ready}
        local = [actor for actor in ready if accesses[actor] == NOTHING]
        if local:  # a step that touches nothing shared commutes with every other: no decision needed
            return current if current in local else local[0]
        for actor in ready:
            if actor not in self.priority:
                self.priority[actor] = self.rng.random()
        futures = futures or {}
        waiting = {actor for actor in ready if any(
            other != actor and not conflict(accesses[actor], accesses[other])
            and conflict(accesses[actor], futures.get(other, NOTHING)) for other in ready)}
        candidates = [actor for actor in ready if actor not in waiting] or ready
        best = max(candidates, key=self.priority.__getitem__)
        ran = accesses[best]
        for other in ready:
            if other != best and conflict(ran, accesses[other]):
                self.priority[other] = self.rng.random()
        del self.priority[best]  # its next step is a new one
        return best


class _Replay:
    def __init__(self, schedule):
        self.choices = dict(schedule.choices)

    def start(self, actors):
        pass

    def choose(self, ready, pending, step, current, futures=None):
        wanted = self.choices.get(step)
        return wanted if wanted in ready else default_choice(ready, current)


def make(name, rng, depth=2, steps=20, schedule=None):
    """Return the strategy ``name`` (one of :data:`STRATEGIES`), or the replay of ``schedule`` when one is given."""
    if schedule is not None:
        return _Replay(schedule)
    classes = {"pos": _POS, "pct": _PCT, "random": _Random, "free": _Random}
    if name not in classes:
        raise ValueError(f"Unknown scheduling strategy {name!r}: use one of {', '.join(STRATEGIES)} "
                         f"(--race-strategy or @pytest.mark.race(strategy=...)).")
    return classes[name](rng, depth, steps)


class Faults:
    """Decide where this run's one fault goes: the ``target``-th point where an allowed kind can happen.

    ``kinds`` are keys of :data:`FAULT_KINDS`; ``estimate`` is how many such points a run has
    (the explorer passes what a fault-free run saw); None makes this run a probe, without a
    fault, that counts them in :attr:`seen`. A replayed schedule's fault goes at its step.
    """

    def __init__(self, rng, kinds=(), estimate=None, schedule=None):
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"Unknown fault kind(s) {', '.join(sorted(unknown))}: use {', '.join(FAULT_KINDS)}.")
        self.kinds, self.seen, self.done = tuple(kinds), 0, False
        self.replayed = schedule.fault if schedule is not None else None
        probe = estimate is None
        self.target = rng.randint(1, max(1, estimate)) if self.kinds and schedule is None and not probe else None

    def eligible(self, point, context, in_job) -> str | None:
        """Return the fault kind that can happen at this point, or None."""
        if "enqueue" in self.kinds and point == "rq.enqueue":
            return "enqueue"
        if "drop" in self.kinds and point == "db.commit" and not context.get("autocommit"):
            return "drop"
        if "kill" in self.kinds and in_job and point not in ("rq.dequeue", "rq.job.end"):
            return "kill"
        return None

    def decide(self, point, context, in_job, step) -> str | None:
        """Return the fault to inject as the actor leaves this point, or None; at most one per run."""
        kind = self.eligible(point, context, in_job)
        if kind is None:
            return None
        self.seen += 1  # counted after the fault too: the explorer's estimate for the next run
        if self.done:
            return None
        if self.replayed is not None:
            hit = self.replayed[0] == step and self.replayed[1] == kind
        else:
            hit = self.seen == self.target
        self.done = hit
        return kind if hit else None
