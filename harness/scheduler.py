"""Run actors one at a time, switching only at race points, chosen by a seeded strategy.

``Scheduler(seed, "pos").run({"writer": write, "reader": read})`` starts each actor in a thread
and lets exactly one of them run at a time. At every race point — the app's own and the built-in
ones: each SQL statement, commit, on-commit, enqueue, dequeue, job start and end — the running
actor parks, and the strategy (:mod:`racelab.harness.strategies`) picks who runs next. The actors
are the named ones and, with ``adopt`` (the default), every other thread that passes a point
during the run, such as an ``rq_worker_thread`` running a job: a worker's job is scheduled like
any actor, named after the job in the order the actors enqueued it (``run_import#1``), whichever
worker takes it, so that a schedule replays whatever worker wins the race to the queue. The run ends when the named actors have returned and no job they enqueued is still
queued or running.

- An actor that does not reach its next point within ``blocked_after`` seconds (waiting on a
  row lock, SQLite's write lock, a long computation) is marked blocked and another one runs; it
  rejoins when it parks again. A thread blocked in the database never stalls a run.
- A fault is a choice too (``faults=("kill", "enqueue", "drop")``, :class:`~racelab.harness.
  strategies.Faults`): the chosen actor leaves its point killed (:class:`WorkerKilled`, a
  BaseException), with a failed enqueue, or with its connection dropped before the COMMIT.
- Every choice is a :class:`Decision`; :attr:`Scheduler.schedule` keeps those that differ from
  the default (keep the current actor), so ``Scheduler(schedule=...)`` replays the run exactly,
  and the explorer (:mod:`racelab.harness.explorer`) can shrink it.

Hits from threads that are not actors pass straight on to the controller installed before (for
example ``sync_points``), as do the actors' hits once they may run: orderings and the trace still
apply. Strategy ``free`` schedules nothing: the actors run freely, with random sleeps at points
(the naive baseline).
"""
from __future__ import annotations

import dataclasses
import random
import re
import threading
import time

from racelab.harness import race
from racelab.harness.conflicts import NOTHING, access, suffixes
from racelab.harness.rules import Wait
from racelab.harness.runner import ActorError, ActorTimeout, RunResult, run_concurrently
from racelab.harness.strategies import STRATEGIES, Faults, Schedule, default_choice, make

__all__ = ["Scheduler", "Decision", "Schedule", "STRATEGIES", "WorkerKilled", "replay_command"]

_START = "(start)"


class WorkerKilled(BaseException):
    """A worker's death at a point: a BaseException, so no ``except Exception`` clean-up of the job runs."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """One choice: in ``run``, at ``step``, ``actor`` was let go from ``point`` (``run``), marked ``blocked``,
    or let go with a fault (``fault`` names it). ``switch`` is true when it preempted a still-ready actor."""

    run: int
    step: int
    kind: str
    actor: str
    point: str
    ready: tuple = ()
    context: dict = dataclasses.field(default_factory=dict, compare=False)
    fault: str | None = None
    switch: bool = False

    def __str__(self):
        if self.kind == "blocked":
            return f"run {self.run} step {self.step}: {self.actor} blocked after leaving {self.point!r}"
        fault = f" with fault {self.fault}" if self.fault else ""
        return f"run {self.run} step {self.step}: {self.actor} from {self.point!r}{fault} (ready: {', '.join(self.ready)})"


def replay_command(seed: int, nodeid: str | None, schedule: Schedule | None = None) -> str:
    """Return the pytest command that replays ``seed`` (and ``schedule``) for the test ``nodeid``."""
    extra = f" --race-schedule '{schedule.encode()}'" if schedule is not None else ""
    if not nodeid:
        return f"pytest --race-seed {seed}{extra} -k <test>"
    nodeid = re.sub(r"\[(.*)\]$", lambda m: _without_seed(m.group(1)), nodeid)
    return f"pytest --race-seed {seed}{extra} '{nodeid}'"


def _without_seed(ids):
    rest = "-".join(part for part in ids.split("-") if not re.fullmatch(r"seed=\d+", part))
    return f"[{rest}]" if rest else ""


class Scheduler:
    """A seeded scheduler over race points; see the module docstring.

    ``Scheduler(seed=None, strategy="pos", depth=2, steps=20, timeout=30.0, blocked_after=0.05,
    faults=(), fault_estimate=None, schedule=None, workers=None, adopt=True)``. Without a
    ``fault_estimate``, a run with ``faults`` injects none and counts where it could have. A None
    seed draws one (read it from :attr:`seed`). ``workers`` says how many RQ workers may take jobs, so that a
    queued job is waited for only while one is free. :meth:`run` installs the scheduler only while
    the actors run; a Scheduler can run several times (``run`` counts them in the decisions).
    """

    def __init__(self, seed: int | None = None, strategy: str = "pos", *, depth: int = 2, steps: int = 20,
                 timeout: float = 30.0, blocked_after: float = 0.05, settle: float = 0.02, teardown=None,
                 nodeid: str | None = None, faults=(), fault_estimate: int | None = None, schedule: Schedule | None = None,
                 workers: int | None = None, adopt: bool = True, arrival_timeout: float = 2.0,
                 predicted: dict | None = None, bus=None):
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown scheduling strategy {strategy!r}: use one of {', '.join(STRATEGIES)} "
                             f"(--race-strategy or @pytest.mark.race(strategy=...)).")
        if depth < 1 or steps < 1:
            raise ValueError(f"PCT needs depth >= 1 and steps >= 1, got depth={depth}, steps={steps}.")
        self.seed = random.SystemRandom().randrange(2**32) if seed is None else int(seed)
        self.strategy_name, self.depth, self.steps = strategy, depth, steps
        self.timeout, self.blocked_after, self.settle, self.teardown = timeout, blocked_after, settle, teardown
        self.nodeid, self.fault_kinds, self.fault_estimate = nodeid, tuple(faults), fault_estimate
        self.replaying, self.workers, self.adopt, self.arrival_timeout = schedule, workers, adopt, arrival_timeout
        self.bus = bus  # a remote_scheduler.Bus: worker processes' jobs are actors too
        self.decisions: list[Decision] = []
        self.schedule = Schedule()
        #: Each actor's steps (what they touch) in the last run: what the next run's ``pos`` expects of it.
        self.accesses: dict[str, list] = {}
        self._predicted = {actor: suffixes(steps) for actor, steps in (predicted or {}).items()}
        self.faults_seen = 0
        self._rng = random.Random(self.seed)
        self._cv = threading.Condition()
        self._runs = 0
        self._next = None
        self._reset(())

    def _reset(self, names):
        self._names, self._order, self._starting, self._done = tuple(names), list(names), set(names), set()
        self._actors: dict[int, str] = {}
        self._parked: dict[str, tuple] = {}
        self._grant: dict[str, str | None] = {}
        self._blocked: set[str] = set()
        self._in_job: set[str] = set()
        self._queued: dict[str, float] = {}  # job id -> when it was enqueued, until a worker takes it
        self._running, self._current, self._left_from = None, None, _START
        self._closing = not names
        self._step, self._choices, self._fault = 0, [], None
        self._exclude = {threading.get_ident()}
        self._remote: dict[str, str] = {}  # a worker process's actor -> the token its parked point waits on
        self._job_names: dict[str, str] = {}  # job id -> the actor its run is, in the order it was enqueued
        self._working: dict[str, str] = {}  # worker -> the actor of the job it runs
        self.accesses = {}

    @property
    def replay(self) -> str:
        """Return the command that replays this scheduler's seed (and the schedule it replays)."""
        return replay_command(self.seed, self.nodeid, self.replaying)

    def describe(self, last: int = 30) -> str:
        """Return the seed, the replay command, the schedule and the last decisions, one per line."""
        lines = [f"seed={self.seed} strategy={self.strategy_name} depth={self.depth} steps={self.steps}",
                 f"Replay: {self.replay}", f"Schedule: {self.schedule.encode()} ({self.schedule.switches} switches)"]
        return "\n".join(lines + [f"  {d}" for d in self.decisions[-last:]])

    @property
    def trace(self) -> list[dict]:
        """Return the last run's steps as ``{"point", "actor", "context"}`` dicts, in the order they ran."""
        return [{"point": d.point, "actor": d.actor, "context": d.context} for d in self.decisions
                if d.run == self._runs and d.kind != "blocked"]

    # -- running ----------------------------------------------------------------------------

    def run(self, actors: dict, timeout: float | None = None, *, teardown=None) -> RunResult:
        """Run the actors and the jobs they enqueue under the schedule; return the actors' runs.

        See :func:`racelab.harness.runner.run_concurrently`; errors get a note with the seed and the
        replay command. Waits, up to the timeout, for the jobs the actors enqueued to end.
        """
        __tracebackhide__ = True
        names = sorted(actors)
        timeout = self.timeout if timeout is None else timeout
        with self._cv:
            self._runs += 1
            self._reset(names)
        self._strategy = make(self.strategy_name, self._rng, self.depth, self.steps, self.replaying)
        self._strategy.start(names)
        self._faults = Faults(self._rng, self.fault_kinds, self.fault_estimate, self.replaying)
        self._next = race.install(self)
        loop = threading.Thread(target=self._loop, name="racelab-scheduler", daemon=True)
        if self.strategy_name != "free":
            loop.start()
            self._exclude.add(loop.ident)
            if self.bus is not None:
                self.bus.open(self._remote_park)
        try:
            result = run_concurrently({name: self._wrap(name, actors[name]) for name in names}, timeout,
                                      teardown=teardown or self.teardown)
            self._drain(timeout)
            return result
        except (ActorError, ActorTimeout) as exc:
            exc.add_note(self.describe())
            raise
        finally:
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            if loop.is_alive():
                loop.join()
            if self.bus is not None and self.strategy_name != "free":
                self.bus.close()
            if race.installed() is self:
                race.install(self._next)
            self.schedule = Schedule(tuple(self._choices), self._fault,
                                     sum(1 for d in self.decisions if d.run == self._runs and d.switch))
            self.faults_seen = self._faults.seen

    def _wrap(self, name, func):
        def actor():
            self._actors[threading.get_ident()] = name
            if self.strategy_name == "free":
                time.sleep(self._rng.random() * 0.01)  # the naive baseline: a random start
            self._park(name, _START, {})
            try:
                return func()
            finally:
                self._finish(name)
        return actor

    def _drain(self, timeout):
        """Wait until no job the actors enqueued is still queued or running (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while (self._in_job or self._waiting_jobs()) and time.monotonic() < deadline:
                self._cv.wait(0.02)  # a queued job stops being waited for after arrival_timeout
            done = not self._in_job
        if not done:
            raise ActorTimeout(f"Jobs still running after {timeout:g} s: {', '.join(sorted(self._in_job)) or '-'}; "
                               f"queued: {', '.join(self._queued) or '-'}.\n{self.describe()}",
                               sorted(self._in_job), RunResult({}))

    # -- the hit ----------------------------------------------------------------------------

    def hit(self, name: str, context: dict) -> None:
        """Park the calling actor until the strategy lets it go, pass the hit on, then inject its fault if any."""
        ident = threading.get_ident()
        actor = self._actors.get(ident)
        if actor is None and self.adopt and not self._closing and ident not in self._exclude:
            actor = self._adopt(ident)
        fault = self._park(actor, name, context) if actor is not None else None
        if self._next is not None:
            self._next.hit(name, context)
        if fault:
            self._inject(fault, context)

    def _adopt(self, ident):
        name = threading.current_thread().name
        with self._cv:
            if name in self._order:  # a second thread of the same name: keep them apart
                name = f"{name}#{ident}"
            self._actors[ident] = name
        return name

    def _inject(self, fault, context):
        from racelab.harness import inject

        if fault == "kill":
            inject.die_like_a_process()
            raise WorkerKilled("racelab's scheduler killed this worker here (a fault it explored)")
        if fault == "enqueue":
            raise inject.InjectedRedisDown("racelab's scheduler failed this enqueue (a fault it explored)")
        if fault == "drop":
            inject.drop_db_connection(context)

    def waiting(self) -> list[Wait]:
        """Return the parked actors (waiting for their turn) and whatever the next controller holds."""
        with self._cv:
            waits = [Wait(a, p, {}, ("its turn from the scheduler",), 0.0) for a, (p, _c) in self._parked.items()]
        return waits + (self._next.waiting() if hasattr(self._next, "waiting") else [])

    def _park(self, me, point, context):
        if self.strategy_name == "free":
            return self._free(me, point, context)
        with self._cv:
            if self._closing:
                return None
            me = self._as_job(me, point, context)
            self._arrive(me, point, context)
            self._cv.wait_for(lambda: self._closing or me in self._grant)
            return self._grant.pop(me, None)

    def _as_job(self, worker, point, context):
        """Return the actor a worker's point belongs to: the job it took at ``rq.dequeue``, else the worker."""
        if point == "rq.dequeue":
            self._working[worker] = self._job_name(context.get("job_id"), context.get("job"))
        return self._working.get(worker, worker)

    def _job_name(self, job_id, job):
        if job_id not in self._job_names:
            short = str(job or "job").rsplit(".", 1)[-1]
            self._job_names[job_id] = f"{short}#{sum(1 for n in self._job_names.values() if n.startswith(short + '#')) + 1}"
        return self._job_names[job_id]

    def _remote_park(self, actor, point, context, token):
        """Take a worker process's parked point as an actor's (called by the bus's thread)."""
        with self._cv:
            if self._closing:
                self.bus.release(token, None)
                return
            actor = self._as_job(actor, point, context)
            self._remote[actor] = token
            self._arrive(actor, point, context)

    def _arrive(self, me, point, context):
        """Record that ``me`` waits at ``point`` (called under the lock)."""
        if me not in self._order:
            self._order.append(me)
        self._starting.discard(me)
        self._blocked.discard(me)
        if point == "rq.dequeue":
            self._queued.pop(context.get("job_id"), None)
            self._in_job.add(me)
        if self._running == me:
            self._running = None
        self._parked[me] = (point, dict(context))
        self._cv.notify_all()

    def _free(self, me, point, context):
        with self._cv:
            if point == "rq.dequeue":
                self._queued.pop(context.get("job_id"), None)
                self._in_job.add(me)
            self._step += 1
            fault = self._faults.decide(point, context, me in self._in_job, self._step)
            if fault:
                self._fault = (self._step, fault)
            self._left(me, point, context, fault)
        if point != _START:
            time.sleep(self._rng.random() * 0.001)
        return fault

    def _left(self, me, point, context, fault):
        """Account for what leaving this point does to jobs (called under the lock)."""
        if point == "rq.enqueue" and not context.get("scheduled") and fault != "enqueue":
            self._queued[context.get("job_id")] = time.monotonic()
            self._job_name(context.get("job_id"), context.get("job"))
        if point == "rq.job.end" or fault == "kill":
            self._in_job.discard(me)
            if self._running == me:
                self._running = None  # a worker between jobs parks again only for its next one
        self._cv.notify_all()

    def _finish(self, me):
        with self._cv:
            self._starting.discard(me)
            self._blocked.discard(me)
            self._in_job.discard(me)
            if self._running == me:
                self._running = None
            self._done.add(me)
            self._cv.notify_all()

    # -- the decisions --------------------------------------------------------------------------

    def _waiting_jobs(self):
        """Return whether a job is queued that a free worker should take soon (then the run is not settled)."""
        if not self._queued:
            return False
        if self.workers is not None and len(self._in_job) >= self.workers:
            return False
        oldest = min(self._queued.values())
        return time.monotonic() - oldest < self.arrival_timeout

    def _loop(self):
        cv = self._cv
        with cv:
            while not self._closing:
                settled = cv.wait_for(lambda: self._closing or (self._running is None and not self._starting),
                                      timeout=self.blocked_after)
                if self._closing:
                    return
                if not settled:
                    if self._running is not None:
                        self.decisions.append(Decision(self._runs, self._step, "blocked", self._running,
                                                       self._left_from))
                        self._blocked.add(self._running)
                        self._running = None
                    continue
                if self._waiting_jobs():
                    cv.wait_for(lambda: self._closing or not self._waiting_jobs(), timeout=0.01)
                    continue
                if self._blocked:  # give a thread that a commit just unblocked the time to park again
                    cv.wait_for(lambda: self._closing or not self._blocked, timeout=self.settle)
                ready = [actor for actor in self._order if actor in self._parked]
                if not ready:
                    cv.wait_for(lambda: self._closing or self._parked or self._waiting_jobs(), timeout=0.05)
                    continue
                self._decide(ready)

    def _future(self, actor):
        """Return what the actor's later steps touched in the run before, from the step after its pending one."""
        known = self._predicted.get(actor)
        if not known:
            return NOTHING
        return known[min(len(self.accesses.get(actor, ())) + 1, len(known) - 1)]

    def _decide(self, ready):
        self._step += 1
        pending = {actor: self._parked[actor] for actor in ready}
        futures = {actor: self._future(actor) for actor in ready}
        chosen = self._strategy.choose(ready, pending, self._step, self._current, futures)
        default = default_choice(ready, self._current)
        if chosen != default:
            self._choices.append((self._step, chosen))
        point, context = pending[chosen]
        self.accesses.setdefault(chosen, []).append(access(point, context))
        fault = self._faults.decide(point, context, chosen in self._in_job, self._step)
        if fault:
            self._fault = (self._step, fault)
        switch = self._current in ready and chosen != self._current
        self.decisions.append(Decision(self._runs, self._step, "fault" if fault else "run", chosen, point,
                                       tuple(ready), context, fault, switch))
        self._left_from, self._current, self._running = point, chosen, chosen
        del self._parked[chosen]
        if chosen in self._remote:
            self.bus.release(self._remote.pop(chosen), fault)
        else:
            self._grant[chosen] = fault  # the actor's turn: it leaves its point with this fault, if any
        self._left(chosen, point, context, fault)
