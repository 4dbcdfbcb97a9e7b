"""Shared plumbing of the race scenarios: fixtures, the Scenario runner, results for ``racelab races``.

A scenario module (``scenarios/rNN_*.py``) names its race in ``RACE``, parametrises its test over
``mode`` in :data:`MODES` and asks for the ``scenario`` fixture, which turns that race's fix flag
off in ``buggy`` mode, seeds the run's data, and ends with :meth:`Scenario.check`: the catalogue
invariants of :mod:`scenarios.invariants` run over the recorded history and the final database
state; ``buggy`` must show an anomaly, ``fixed`` must show none. Every outcome is appended as a
JSON line to the file named by ``RACELAB_RACES_RESULTS`` when set, which is how ``racelab races``
(one pytest run over ``scenarios/``) collects them; :func:`run` replays one race, mode and seed.

The fixtures (``scenario``, ``user``, ``project``, ``api``) are in ``scenarios/conftest.py``.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from racelab.harness.checker import Anomaly, Checker
from racelab.harness.scheduler import WorkerKilled  # noqa: F401 - the scenarios' worker death, as the explorer's

MODES = ("fixed", "buggy")
RACES = tuple(f"R{n}" for n in range(1, 13))
RESULTS_ENV = "RACELAB_RACES_RESULTS"
EXPLORE_RESULTS_ENV = "RACELAB_EXPLORE_RESULTS"
ROOT = Path(__file__).resolve().parent.parent

RUN_IMPORT = "label_studio.data_import.services.run_import"
PROCESS_PDF_PAGES = "label_studio.data_import.services.process_pdf_pages"


# --- outcomes -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What one run of a scenario found: its anomalies and a one-line example of them."""

    race: str
    mode: str
    seed: int
    anomalies: list
    example: str | None = None
    skipped: str | None = None

    @property
    def reproduced(self) -> bool:
        return bool(self.anomalies)

    def to_json(self) -> dict:
        return {"race": self.race, "mode": self.mode, "seed": self.seed, "anomalies": len(self.anomalies),
                "messages": [str(a) for a in self.anomalies[:3]], "example": self.example,
                "skipped": self.skipped}


def record(outcome: Outcome) -> None:
    """Append ``outcome`` as one JSON line to ``$RACELAB_RACES_RESULTS`` (nothing when unset)."""
    _append(RESULTS_ENV, outcome.to_json())


def _append(env, row):
    path = os.environ.get(env)
    if not path:
        return
    line = json.dumps(row) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # one write: lines never interleave
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# --- the runner ----------------------------------------------------------------------------------


class Scenario:
    """One run of one race in one mode: the flags, the seeded data, the history and the final check."""

    def __init__(self, race, mode, seed, settings, history, media_root):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self.race, self.mode, self.seed = race, mode, seed
        self.rng = random.Random(f"{race}:{seed}")
        self.settings, self.history = settings, history
        settings.MEDIA_ROOT = media_root
        from django.core.cache import cache

        cache.clear()  # the locmem cache outlives a test: R6 off must not read another run's counts
        self.flags_off = []
        if self.buggy:
            self.turn_off(race)

    @property
    def buggy(self) -> bool:
        return self.mode == "buggy"

    def turn_off(self, *fixes):
        """Turn ``fixes`` off for this run (the test process and any worker process started after)."""
        self.settings.IMPORT_FIXES = {**self.settings.IMPORT_FIXES, **{fix: False for fix in fixes}}
        self.flags_off += [fix for fix in fixes if fix not in self.flags_off]

    def skip(self, reason):
        """Record the run as skipped and skip the test with ``reason``."""
        record(Outcome(self.race, self.mode, self.seed, [], None, skipped=reason))
        pytest.skip(reason)

    def explore(self, explorer, run, *invariants, faults=(), workers=None):
        """Find this race from its actors alone: explore ``run(scheduler) -> state``, holding ``invariants`` each run.

        ``run`` sets up fresh rows and runs the actors with ``scheduler.run(...)``; no ordering,
        no delay. Each run starts with an empty history, empty queues, and :attr:`rng` seeded by
        the run's own seed, so that its replay draws the same data. Buggy mode must find an
        anomaly within the budget, fixed mode none in the whole budget. The figures go to
        ``$RACELAB_EXPLORE_RESULTS`` (one JSON line), for ``racelab explore``.
        """
        __tracebackhide__ = True
        from django.db import connection

        checker = Checker({fn.__name__: fn for fn in invariants}, history=self.history)

        def run_once(scheduler):
            self.history.clear()
            self.rng = random.Random(f"{self.race}:{scheduler.seed}")  # the run's data, as its replay will draw it
            empty_queues()
            return list(checker.check(state=run(scheduler)).anomalies)

        result = explorer.explore(run_once, faults=faults, workers=workers, stop=self.buggy)
        _append(EXPLORE_RESULTS_ENV, {"race": self.race, "mode": self.mode, "db": connection.vendor,
                                      "workers": "processes" if explorer.bus else "threads",
                                      "faults": list(faults), **result.to_json()})
        if result.finding:
            print(result.finding.report())  # shown with -rP, and under the failure when fixed mode finds one
        flags = f"fix(es) {', '.join(self.flags_off)} off" if self.flags_off else "every fix on"
        if self.buggy:
            assert result.found_at, (f"{self.race} was not found from its actors with {flags}: {result.runs} runs "
                                     f"under {result.strategy} (seed {result.seed}) held every invariant.")
        else:
            assert not result.found_at, (f"{self.race} showed an anomaly with {flags}, in run {result.found_at} of "
                                         f"{result.runs}:\n{result.finding.report()}")
        return result

    def check(self, state, *invariants) -> Outcome:
        """Hold ``invariants`` over the history and ``state``; assert the mode's expectation; record it."""
        __tracebackhide__ = True
        checker = Checker({fn.__name__: fn for fn in invariants}, history=self.history)
        result = checker.check(state=state)
        anomalies = list(result.anomalies)
        outcome = Outcome(self.race, self.mode, self.seed, anomalies, str(anomalies[0]) if anomalies else None)
        record(outcome)
        flags = f"fix(es) {', '.join(self.flags_off)} off" if self.flags_off else "every fix on"
        if self.buggy:
            assert anomalies, (f"{self.race} did not reproduce with {flags} (seed {self.seed}): "
                               f"{result.report()}")
        else:
            assert not anomalies, f"{self.race} showed an anomaly with {flags} (seed {self.seed}):\n{result.report()}"
        return outcome


# --- fixtures and helpers --------------------------------------------------------------------------


WORKERS = ("threads", "processes")


def start_workers(request, explorer, on, count):
    """Start ``count`` RQ workers for an exploration: threads (``on="threads"``) or real worker processes.

    Worker processes take part through the explorer's bus (``explorer.worker_env()``): their jobs
    are scheduled like threads, and a kill is their work horse's ``os._exit``.
    """
    if on == "processes":
        request.getfixturevalue("rq_worker_process")(count, env=explorer.worker_env())
    else:
        request.getfixturevalue("rq_worker_threads")(count)


def empty_queues():
    """Empty the app's RQ queues and their registries, when it has Redis: each explored run starts clean."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    import django_rq
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

    for name in settings.RQ_QUEUES:
        queue = django_rq.get_queue(name)
        queue.empty()
        for registry in (ScheduledJobRegistry(queue=queue), FailedJobRegistry(queue=queue),
                         FinishedJobRegistry(queue=queue)):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)


def json_upload(name, count, rng=None):
    """Return an :class:`~label_studio.data_import.services.Upload` of ``count`` JSON tasks."""
    from label_studio.data_import.services import Upload

    salt = rng.randrange(10**6) if rng else 0
    return Upload(name, json.dumps([{"data": {"text": f"task {i} ({salt})", "n": i}} for i in range(count)]).encode())


@functools.lru_cache(maxsize=None)
def pdf_bytes(pages):
    """Return a PDF of ``pages`` pages, each with its own line of text (cached per process)."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    document = canvas.Canvas(out)
    for n in range(1, pages + 1):
        document.drawString(72, 720, f"Page {n} of the document")
        document.showPage()
    document.save()
    return out.getvalue()


def on_thread(name):
    """Return a point predicate true when the hitting thread is ``name`` (for asymmetric orderings in one process)."""
    def predicate(context):
        return threading.current_thread().name == name
    predicate.__name__ = f"on_thread_{name.replace('#', '_')}"
    return predicate


def uploads_state(project):
    """Return the project's file uploads, keyed by id, with their status and committed task count."""
    from label_studio.data_import.models import FileUpload

    return {fu.id: {"status": fu.status, "task_count": fu.task_count, "parent": fu.parent_id,
                    "pages_done": fu.pages_done, "pages_total": fu.pages_total, "claimed": fu.claimed_at is not None}
            for fu in FileUpload.objects.filter(project=project).with_task_count()}


def import_state(import_id):
    """Return one import's status and counts, or None when no row exists."""
    from label_studio.data_import.models import ProjectImport

    row = ProjectImport.objects.filter(id=import_id).values("id", "status", "task_count", "file_upload_ids").first()
    return row


def trace_state(sync_points):
    """Return the sync-points trace as a list of dicts (point, actor, context), for trace invariants."""
    return [{"point": h.point, "actor": h.actor, "context": h.context} for h in sync_points.trace]


def anomaly(invariant, message, *ops):
    return Anomaly(invariant, message, tuple(ops))


# --- the CLI's entry: run scenarios in a pytest subprocess -------------------------------------


def module_of(race):
    """Return the scenario module name (``r03``-prefixed) of ``race``."""
    number = int(race.upper().lstrip("R"))
    return f"r{number:02d}_"


def pytest_command(races=RACES, modes=MODES, seeds=1, seed=None, db="sqlite", workers=2,
                   scheduler=True, extra=(), explored=False, on=None):
    """Return the pytest argv that runs ``races`` in ``modes`` for ``seeds`` seeds (from ``seed``).

    ``explored`` picks the exploring variants (``test_rN_explored``) instead of the forced ones;
    ``on`` (``threads`` or ``processes``) keeps those whose RQ workers are threads, or processes.
    """
    selected = " or ".join(module_of(race) for race in races)
    keyword = f"({selected}) and {'' if explored else 'not '}explored"
    if on:
        keyword += f" and {'' if on == 'processes' else 'not '}processes"
    if set(modes) != set(MODES):
        keyword += " and " + " and ".join(f"not {m}" for m in MODES if m not in modes)
    if not scheduler:
        keyword += " and not scheduler"
    argv = [sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-q", "--race-db", db,
            "-k", keyword, "--race-runs", str(seeds), "-o", "addopts=-p no:cacheprovider"]
    if seed is not None:
        argv += ["--race-seed", str(seed)]
    if workers and workers > 1:
        argv += ["-n", str(workers)]
    return argv + list(extra)


def child_env(**extra):
    """Return the environment of a child pytest run: ours, less pytest-xdist's worker variables.

    A child started from an xdist worker would otherwise believe it is a worker
    itself, and skip starting the services its own ``--db`` asks for.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST_")}
    env.pop("PYTEST_CURRENT_TEST", None)
    return {**env, **extra}


def run(race, mode, seed, db="sqlite") -> Outcome:
    """Replay one scenario run (``race`` in ``mode`` with ``seed``) in a pytest subprocess; return its outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        argv = pytest_command([race], [mode], seeds=1, seed=seed, db=db, workers=0, scheduler=False)
        subprocess.run(argv, cwd=ROOT, env=child_env(**{RESULTS_ENV: str(results), "RACELAB_HOME": tmp}),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        lines = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    if not lines:
        raise RuntimeError(f"{race} {mode} seed {seed} recorded no outcome: run the pytest command by hand: "
                           f"{' '.join(pytest_command([race], [mode], 1, seed, db, 0, False))}")
    row = lines[-1]
    return Outcome(row["race"], row["mode"], row["seed"], row["messages"] if row["anomalies"] else [],
                   row["example"], row.get("skipped"))


def record_jobs(sync_points, history, job, label="job"):
    """Record every run of ``job`` (a dotted name) in ``history``, from its ``job.start`` to its ``job.end``.

    Each run is an operation of process ``<label>#<first arg>`` named after the job's function.
    """
    f = job.rsplit(".", 1)[1]

    def process(context):
        args = tuple(context.get("args") or ())
        return f"{label}#{args[0] if args else '?'}@{threading.current_thread().name}"

    def started(context):
        if history.in_flight(process(context)):  # its worker died mid-job: this run is a retry
            history.info(process(context), error="the worker died before the job ended")
        history.invoke(process(context), f, list(context.get("args") or ()))

    def ended(context):
        if context.get("ok"):
            history.ok(process(context))
        else:
            history.info(process(context), error="the job raised")
    sync_points.on(("job.start", {"job": job}), started, label=f"history: {f} invoked")
    sync_points.on(("job.end", {"job": job}), ended, label=f"history: {f} completed")


def list_uploads(history, process, project):
    """Read the project's file-upload listing (the service behind the API) as ``process``, recorded in ``history``."""
    from racelab import race_point
    from label_studio.data_import import services

    race_point("reader.list", reader=process)
    with history.op(process, "list uploads") as op:
        seen = {fu.id: {"status": fu.status, "task_count": fu.task_count}
                for fu in services.file_uploads_for_listing(project)}
        op.ok(seen)
    race_point("reader.listed", reader=process)
    return seen


def recover(history, eventually):
    """Run the reconciler as ``reconciler#1`` (recorded in ``history``); wait for each import it re-dispatched (lost
    jobs under ``imports``, failed enqueues under ``dispatched``), or found still queued or running, to end."""
    from label_studio.data_import import services
    from label_studio.data_import.models import ProjectImport

    with history.op("reconciler#1", "reconcile") as op:
        # Every claim stale: a thread "killed" by WorkerKilled lives on, and its worker may still show the job.
        done = op.ok(services.reconcile(stuck_after=0, dead_after=-1)).value
    sent = done["imports"] + done["dispatched"]
    for import_id in sent + done["waiting"]:
        eventually(lambda: ProjectImport.objects.get(id=import_id).status in ProjectImport.FINAL, 30,
                   f"import {import_id} ({'re-dispatched' if import_id in sent else 'its job live'}) to finish")
    return done


def recovery_state(project, project_import, count):
    """Return the final state the recovery invariants read: imports, uploads and each file's expected tasks."""
    from label_studio.data_import.models import ProjectImport

    imports = {row["id"]: row for row in ProjectImport.objects.filter(project=project).values("id", "status")}
    return {"imports": imports, "uploads": uploads_state(project),
            "expected_tasks": {fu_id: count for fu_id in project_import.file_upload_ids}}
