"""Find a race from its actors alone: run them under the scheduler, seed after seed, until an invariant breaks.

``Explorer(seed=7, budget=200).explore(run_once)`` calls ``run_once(scheduler)`` once per run, each
with a :class:`~racelab.harness.scheduler.Scheduler` seeded ``seed * 10000 + i``. The callable sets up fresh
rows, runs the actors with ``scheduler.run(...)``, checks the invariant and returns its anomalies
(empty when it held). No ordering and no delay is given: the strategy alone decides who runs at
each point, and where the one fault of a run goes. The estimates a strategy needs (PCT's step
count, how many points can take a fault) come from the runs before.

At the first run with an anomaly the exploration stops (``stop=False`` explores the whole budget),
and the failing schedule is shrunk: its choices are removed, half then one at a time, while a
replay of what is left still breaks the invariant, so the report shows the fewest switches that
do. The result is replayed ``confirm`` times to prove it deterministic. :class:`Exploration`
holds the figures (runs to the first anomaly, seconds) and the :class:`Finding`: its seed, its
schedule, the run told in words, and the command that replays it.
"""
from __future__ import annotations

import dataclasses
import time

from racelab.harness.narrate import narrate
from racelab.harness.scheduler import Schedule, Scheduler, replay_command

__all__ = ["Explorer", "Exploration", "Finding"]


@dataclasses.dataclass
class Finding:
    """A run that broke the invariant: how to replay it, and what happened, in words."""

    seed: int
    run: int
    anomalies: list
    schedule: Schedule
    switches: int
    story: str
    replay: str
    shrink_runs: int = 0
    replays: tuple = (0, 0)  # (broke the invariant again, replayed)

    def report(self) -> str:
        """Return the finding as the lines a failing test prints."""
        again, replayed = self.replays
        lines = [f"Found in run {self.run} (seed {self.seed}): {self.anomalies[0]}",
                 f"Shrunk to {self.switches} switch(es), schedule {self.schedule.encode()} "
                 f"({self.shrink_runs} replays to shrink; {again} of {replayed} replays broke it again).",
                 "The run, step by step:", self.story, f"Replay: {self.replay}"]
        return "\n".join(lines)


@dataclasses.dataclass
class Exploration:
    """What an exploration did: ``runs`` made, ``found_at`` (the 1-based run of the first anomaly, or None)."""

    strategy: str
    seed: int
    budget: int
    runs: int = 0
    found_at: int | None = None
    seconds: float = 0.0
    run_seconds: list = dataclasses.field(default_factory=list)
    finding: Finding | None = None

    @property
    def runs_per_second(self) -> float:
        return self.runs / sum(self.run_seconds) if self.run_seconds else 0.0

    def to_json(self) -> dict:
        finding = self.finding
        return {"strategy": self.strategy, "seed": self.seed, "budget": self.budget, "runs": self.runs,
                "found_at": self.found_at, "seconds": round(self.seconds, 3),
                "runs_per_second": round(self.runs_per_second, 2),
                "anomaly": str(finding.anomalies[0]) if finding else None,
                "switches": finding.switches if finding else None,
                "schedule": finding.schedule.encode() if finding else None,
                "replays": list(finding.replays) if finding else None,
                "replay": finding.replay if finding else None}


class Explorer:
    """Explore runs of some actors under seeded schedules; see the module docstring.

    ``Explorer(seed, strategy="pos", budget=200, timeout=30, nodeid=None, teardown=None,
    shrink=True, confirm=2, schedule=None)``; with ``schedule`` given, :meth:`explore` replays that
    one schedule with ``seed`` instead of exploring.
    """

    def __init__(self, seed: int, strategy: str = "pos", *, budget: int = 200, timeout: float = 30.0,
                 nodeid: str | None = None, teardown=None, shrink: bool = True, confirm: int = 2,
                 schedule: Schedule | None = None, redis_url=None):
        if budget < 1:
            raise ValueError(f"An exploration needs a budget of at least 1 run, got {budget} (--race-budget).")
        self.seed, self.strategy, self.budget, self.timeout = seed, strategy, budget, timeout
        self.nodeid, self.teardown, self.shrink, self.confirm, self.schedule = nodeid, teardown, shrink, confirm, schedule
        self.faults, self.workers = (), None
        self.bus, self._redis_url = None, redis_url  # redis_url: a callable, asked only for worker processes
        self._max_steps, self._fault_points = 0, None  # a fault-free run's count of points that can take a fault
        self._predicted = {}  # each actor's steps in the latest run: the pos strategy's expectations

    def worker_env(self) -> dict:
        """Return the environment that makes ``rq_worker_process`` workers take part: their jobs become actors.

        ``rq_worker_process(2, env=race_explorer.worker_env())``; the first call opens the bus
        (:class:`~racelab.harness.remote_scheduler.Bus`) in the run's Redis.
        """
        from racelab.harness.remote_scheduler import Bus

        if self.bus is None:
            if self._redis_url is None:
                raise RuntimeError("This Explorer has no Redis for worker processes: give it redis_url=.")
            self.bus = Bus(self._redis_url())
        return self.bus.env

    def scheduler(self, seed: int, schedule: Schedule | None = None) -> Scheduler:
        """Return a Scheduler for one run, with the estimates learned from the runs before."""
        return Scheduler(seed, self.strategy, steps=self._max_steps or 20, timeout=self.timeout,
                         teardown=self.teardown, nodeid=self.nodeid, faults=self.faults,
                         fault_estimate=self._fault_points, schedule=schedule, workers=self.workers,
                         predicted=self._predicted, bus=self.bus)

    def _run(self, run_once, seed, schedule=None):
        scheduler = self.scheduler(seed, schedule)
        try:
            anomalies = list(run_once(scheduler) or ())
        except Exception as exc:  # noqa: BLE001 - an actor crashing under a schedule is a finding too
            anomalies = [f"the run raised {type(exc).__name__}: {exc}".splitlines()[0]]
        self._max_steps = max(self._max_steps, sum(1 for d in scheduler.decisions if d.kind != "blocked"))
        if schedule is None and (scheduler.schedule.fault is None or scheduler.faults_seen > (self._fault_points or 0)):
            # a fault cuts a run short: only a fault-free run (or a longer one) tells how many points it has
            self._fault_points = max(1, scheduler.faults_seen, self._fault_points or 0)
        if schedule is None:
            self._predicted = {**self._predicted, **scheduler.accesses}
        return anomalies, scheduler

    def explore(self, run_once, *, faults=(), workers: int | None = None, stop: bool = True) -> Exploration:
        """Run ``run_once`` under up to ``budget`` schedules; return the figures and the first finding.

        ``faults`` are the fault kinds to explore (:data:`~racelab.harness.strategies.FAULT_KINDS`);
        ``workers`` is how many RQ workers take the actors' jobs.
        """
        self.faults, self.workers = tuple(faults), workers
        result = Exploration(self.strategy, self.seed, self.budget)
        began = time.monotonic()
        # Run i's own seed, apart from every other exploration's: its replay needs no base seed.
        runs = [(self.seed, self.schedule)] if self.schedule is not None else [(self.seed * 10_000 + i, None)
                                                                                for i in range(self.budget)]
        for seed, schedule in runs:
            started = time.monotonic()
            anomalies, scheduler = self._run(run_once, seed, schedule)
            result.run_seconds.append(time.monotonic() - started)
            result.runs += 1
            if anomalies and result.found_at is None:
                result.found_at = result.runs
                result.finding = self._finding(run_once, seed, result.runs, anomalies, scheduler)
                if stop:
                    break
        result.seconds = time.monotonic() - began
        return result

    def _finding(self, run_once, seed, run, anomalies, scheduler):
        schedule, last, replays = scheduler.schedule, (scheduler, anomalies), 0
        if self.shrink and self.strategy != "free":
            schedule, last, replays = self._shrink(run_once, seed, schedule, last)
        last, anomalies = last
        again = 0
        for _ in range(self.confirm if self.strategy != "free" else 0):
            found, _replayed = self._run(run_once, seed, schedule)
            again += bool(found)
        story = narrate([d for d in last.decisions if d.run == last._runs])
        command = replay_command(seed, self.nodeid, schedule if self.strategy != "free" else None)
        return Finding(seed, run, anomalies, schedule, last.schedule.switches, story, command, replays,
                       (again, self.confirm if self.strategy != "free" else 0))

    def _shrink(self, run_once, seed, schedule, last, limit: int = 60):
        """Drop the schedule's choices (halves, then one by one) while a replay still breaks the invariant.

        Return the shrunk schedule, the last failing run as ``(scheduler, anomalies)``, and the replays made.
        """
        replays = 0

        def still_fails(candidate):
            nonlocal replays, last
            replays += 1
            found, scheduler = self._run(run_once, seed, candidate)
            if found:
                last = (scheduler, found)
            return bool(found)

        if not still_fails(schedule):  # not reproducible as recorded: report the run as it happened
            return schedule, last, replays
        if schedule.fault and still_fails(Schedule(schedule.choices, None)):
            schedule = Schedule(schedule.choices, None)
        choices, chunk = list(schedule.choices), max(1, len(schedule.choices) // 2)
        while choices and replays < limit:
            removed = False
            for start in range(0, len(choices), chunk):
                candidate = choices[:start] + choices[start + chunk:]
                if still_fails(Schedule(tuple(candidate), schedule.fault)):
                    choices, removed = candidate, True
                    break
                if replays >= limit:
                    break
            if not removed:
                if chunk == 1:
                    break
                chunk = max(1, chunk // 2)
        if len(choices) > 1:  # removing choices cannot move one: try one choice near each of those left
            actors = sorted({d.actor for d in last[0].decisions})
            for step, actor in [(step + delta, who) for step, _ in choices for delta in (0, -1, 1, -2, 2, -3, 3)
                                for who in actors]:
                if replays >= limit:
                    break
                if step > 0 and still_fails(Schedule(((step, actor),), schedule.fault)):
                    choices = [(step, actor)]
                    break
        final = Schedule(tuple(choices), schedule.fault)
        still_fails(final)  # the replay whose decisions the story tells
        return final, last, replays
