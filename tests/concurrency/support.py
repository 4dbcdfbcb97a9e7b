"""Actors, final-state snapshots and invariants shared by the concurrency tests.

The tests here do not force one interleaving (that is what ``scenarios/`` does); they start many
real actors together — web requests, readers, RQ workers — optionally widen the race windows
with injected delays, record every operation in the ``race_history``, and then hold invariants
over that history and the final database state. The catalogue's invariants
(:mod:`scenarios.invariants`) are reused where they apply; the generic ones below cover what a
load of imports must keep: nothing stuck, exact counts everywhere, no partial visibility.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter

from racelab.harness.checker import Anomaly
from racelab.harness.history import _short
from racelab.harness.inject import POINTS
from scenarios.common import list_uploads, uploads_state

#: Concurrent uploads in ``test_many_concurrent_uploads_into_one_project``. CI keeps it small;
#: 100 concurrent uploads (and more) is the load suite's job (``locustfiles/``), which drives a
#: served app with real web workers.
CONCURRENT_UPLOADS = int(os.environ.get("RACELAB_CONCURRENT_UPLOADS", "24"))

#: How long every injected delay holds an actor: enough to widen a window, cheap in CI.
DELAY = 0.05

#: The delay parameters of the tests: none, or ``commit`` / ``worker`` / both, as in ``RACELAB_INJECT``.
DELAYS = ("none", "commit", "worker", "commit+worker")


def inject(sync_points, delays):
    """Delay every actor of this process ``DELAY`` s at the points ``delays`` names ("commit+worker"); "none" adds nothing."""
    for key in delays.split("+"):
        if key != "none":
            sync_points.delay(POINTS[key], DELAY, label=f"inject {key}={DELAY * 1000:g}ms")


def assert_delays_applied(sync_points, delays):
    """Assert that each injected delay held at least one actor (the trace notes it)."""
    for key in delays.split("+"):
        if key != "none":
            held = [hit for hit in sync_points.trace if hit.point == POINTS[key] and hit.actions]
            assert held, f"The injected {key} delay never held an actor at {POINTS[key]!r}: the test did not widen the window."


class Reader:
    """A reader actor: lists the project's file uploads (and polls ``imports``) until ``until()`` is true.

    Each read is an operation of the history: ``list uploads`` with ``{id: {status, task_count}}``
    (:func:`scenarios.common.list_uploads`, the service behind the listing API) and, when it
    follows imports, ``poll imports`` with ``{id: {status, task_count}}``. After ``until()`` turns
    true it reads once more, so that a read begins after every write was acknowledged. It also
    stops when nothing it reads has changed for ``stall`` seconds: a stuck import then fails the
    test through the invariants, which say which rows are stuck and how, instead of a timeout.
    """

    def __init__(self, history, project, *, name="reader#1", until=lambda: False, imports=(), pace=0.005,
                 stall=20.0):
        self.history, self.project, self.name = history, project, name
        self.until, self.imports, self.pace, self.stall = until, imports, pace, stall
        self.reads, self.stalled = 0, False
        self._idle = threading.Event()  # never set: its wait() paces the reads

    def read(self):
        """Read once; return what was seen."""
        seen = [list_uploads(self.history, self.name, self.project)]
        if self.imports:
            from label_studio.data_import.models import ProjectImport

            with self.history.op(self.name, "poll imports") as op:
                polled = {row["id"]: {"status": row["status"], "task_count": row["task_count"]}
                          for row in ProjectImport.objects.filter(id__in=list(self.imports)).values(
                              "id", "status", "task_count")}
                op.ok(polled)
            seen.append(polled)
        self.reads += 1
        return seen

    def __call__(self):
        last, changed = None, time.monotonic()
        while not self.until():
            seen = self.read()
            if seen != last:
                last, changed = seen, time.monotonic()
            elif time.monotonic() - changed > self.stall:
                self.stalled = True
                break
            self._idle.wait(self.pace)
        self.read()
        return self.reads


class Finished:
    """A thread-safe set of finished actors: ``wrap(name, fn)`` marks ``name`` when ``fn`` ends, however it ends."""

    def __init__(self, total):
        self.total, self.names, self._lock = total, set(), threading.Lock()

    def wrap(self, name, fn):
        def run():
            try:
                return fn()
            finally:
                with self._lock:
                    self.names.add(name)
        return run

    def __call__(self):
        return len(self.names) >= self.total


def imports_final(import_ids):
    """Return a predicate: every import of ``import_ids`` (a list that may still grow) is completed or failed."""
    from label_studio.data_import.models import ProjectImport

    def final():
        ids = list(import_ids)
        return bool(ids) and ProjectImport.objects.filter(id__in=ids, status__in=ProjectImport.FINAL).count() == len(ids)
    return final


def final_state(project, expected_tasks):
    """Return the final database state the invariants read, ``expected_tasks`` being ``{file upload id: tasks}``.

    Keys: ``project``; ``uploads`` (:func:`scenarios.common.uploads_state`); ``listing`` (task
    counts from :func:`services.file_uploads_for_listing`); ``task_rows`` (Task rows per file
    upload, a PDF parent's being its pages'); ``inner_ids``; ``task_number`` (the project's
    annotated count); ``imports``; ``expected_tasks`` and ``expected_total``.
    """
    from label_studio.data_import import services
    from label_studio.data_import.models import ProjectImport
    from label_studio.projects.models import Project
    from label_studio.tasks.models import Task

    task_rows = Counter()
    for fu_id, parent_id in Task.objects.filter(project=project).values_list("file_upload_id", "file_upload__parent_id"):
        task_rows[fu_id] += 1
        if parent_id is not None:
            task_rows[parent_id] += 1
    return {
        "project": project.id,
        "uploads": uploads_state(project),
        "listing": {fu.id: fu.task_count for fu in services.file_uploads_for_listing(project)},
        "task_rows": dict(task_rows),
        "inner_ids": list(Task.objects.filter(project=project).values_list("inner_id", flat=True)),
        "task_number": Project.objects.with_task_number().get(id=project.id).task_number,
        "imports": {row["id"]: row for row in ProjectImport.objects.filter(project=project).values(
            "id", "status", "task_count", "file_upload_ids")},
        "expected_tasks": dict(expected_tasks),
        "expected_total": sum(expected_tasks.values()),
    }


# --- invariants: (history, state) -> [Anomaly] ---------------------------------------------------


def every_import_completed(history, state):
    """Every import and every file upload (pages too) ends ``completed``: none stuck, none failed."""
    anomalies = []
    for import_id, row in state["imports"].items():
        if row["status"] != "completed":
            anomalies.append(Anomaly("every_import_completed", (
                f"Import {import_id} ended {row['status']!r} with {row['task_count']} tasks; every file was "
                f"valid, so it must end 'completed'.")))
    for fu_id, fu in state["uploads"].items():
        if fu["status"] != "completed":
            what = f"page upload {fu_id} of {fu['parent']}" if fu["parent"] else f"file upload {fu_id}"
            anomalies.append(Anomaly("every_import_completed", (
                f"{what[0].upper()}{what[1:]} ended {fu['status']!r} with {fu['task_count']} tasks.")))
    return anomalies


def listed_counts_are_task_rows(history, state):
    """Each file upload's listed ``task_count`` equals its Task rows, and its file's task count."""
    anomalies = []
    for fu_id, listed in state["listing"].items():
        rows = state["task_rows"].get(fu_id, 0)
        want = state["expected_tasks"].get(fu_id)
        if listed != rows or (want is not None and rows != want):
            anomalies.append(Anomaly("listed_counts_are_task_rows", (
                f"File upload {fu_id} is listed with {listed} tasks, has {rows} Task rows"
                + (f" and its file holds {want}." if want is not None else ".")
                + " The listing, the rows and the file must agree.")))
    missing = sorted(set(state["expected_tasks"]) - set(state["listing"]))
    if missing:
        anomalies.append(Anomaly("listed_counts_are_task_rows",
                                 f"File upload(s) {missing} were created but are not listed for the project."))
    return anomalies


def project_tasks_exact(history, state):
    """The project's tasks: inner ids unique, as many as the files hold, and its ``task_number`` the same."""
    anomalies = []
    duplicated = sorted(i for i, n in Counter(state["inner_ids"]).items() if n > 1)
    if duplicated:
        anomalies.append(Anomaly("project_tasks_exact", (
            f"{len(duplicated)} inner id(s) are used twice in project {state['project']} (e.g. {duplicated[:3]}): "
            f"two writers allocated the same ids.")))
    want = state["expected_total"]
    if (len(state["inner_ids"]), state["task_number"]) != (want, want):
        anomalies.append(Anomaly("project_tasks_exact", (
            f"Project {state['project']} has {len(state['inner_ids'])} task rows and reports task_number "
            f"{state['task_number']}; the imported files hold {want}.")))
    return anomalies


def acknowledged_imports_are_read_whole(history, state):
    """Read-your-writes: a listing begun after a sync import returned sees its uploads completed, with all tasks."""
    anomalies = []
    reads = history.pairs("list uploads", ok=True)
    for w_inv, w_done in history.pairs("sync import", ok=True):
        for r_inv, r_done in reads:
            if r_inv.time <= w_done.time:
                continue
            for fu_id, want in w_done.value["tasks_per_upload"].items():
                seen = r_done.value.get(int(fu_id)) or r_done.value.get(str(fu_id))
                if seen is None or (seen["status"], seen["task_count"]) != ("completed", want):
                    anomalies.append(Anomaly("acknowledged_imports_are_read_whole", (
                        f"{r_inv.process}'s list uploads begun at {r_inv.at} saw file upload {fu_id} as "
                        f"{_short(seen) if seen else 'absent'}, after {w_inv.process}'s sync import returned it "
                        f"with {want} tasks at {w_done.at}."), (w_inv, w_done, r_inv, r_done)))
                    break
    return anomalies


def completed_import_polled_whole(history, state):
    """A poller never sees an import ``completed`` with fewer tasks than it ends with."""
    anomalies = []
    for r_inv, r_done in history.pairs("poll imports", ok=True):
        for import_id, seen in r_done.value.items():
            final = state["imports"].get(int(import_id))
            if final and seen["status"] == "completed" and seen["task_count"] != final["task_count"]:
                anomalies.append(Anomaly("completed_import_polled_whole", (
                    f"{r_inv.process}'s poll at {r_done.at} saw import {import_id} 'completed' with "
                    f"{seen['task_count']} tasks; it ends with {final['task_count']}."), (r_inv, r_done)))
    return anomalies


# --- actors and checks ---------------------------------------------------------------------------


def sync_importer(history, name, send, tasks):
    """Return an actor that records ``send()`` (a sync import of ``tasks`` tasks per file) as a ``sync import``.

    ``send`` returns the import response (the API's body or :func:`services.sync_import`'s dict);
    the operation's value is ``{"task_count", "tasks_per_upload": {file upload id: tasks}}``, the
    shape :func:`scenarios.invariants.sync_upload_has_all_its_tasks` and ``inner_ids_unique`` read.
    """
    def run():
        with history.op(name, "sync import", {"tasks": tasks}) as op:
            body = send()
            op.ok({"task_count": body["task_count"],
                   "tasks_per_upload": {fu_id: tasks for fu_id in body["file_upload_ids"]}})
        return body
    return run


def async_importer(history, name, project, user, files, import_ids):
    """Return an actor that starts one async import of ``files`` (``[(Upload, tasks)]``), recorded as ``async import``.

    The new import's id is appended to ``import_ids``; the operation's value names the import
    and ``tasks_per_upload``, as for :func:`sync_importer`.
    """
    from label_studio.data_import import services

    def run():
        with history.op(name, "async import", {"files": [upload.name for upload, _ in files]}) as op:
            project_import = services.start_async_import(project, user, [upload for upload, _ in files])
            import_ids.append(project_import.id)
            op.ok({"import": project_import.id, "tasks_per_upload": {
                fu_id: tasks for fu_id, (_, tasks) in zip(project_import.file_upload_ids, files)}})
        return project_import.id
    return run


def expected_tasks(history):
    """Return ``{file upload id: tasks}`` over every acknowledged sync and async import of ``history``."""
    return {int(fu_id): tasks for f in ("sync import", "async import") for _, done in history.pairs(f, ok=True)
            for fu_id, tasks in done.value["tasks_per_upload"].items()}


def check(race_checker, state, *invariants):
    """Hold ``invariants`` (and ``all_completed``) over the history and ``state``; fail with every anomaly."""
    __tracebackhide__ = True
    for invariant in invariants:
        race_checker.add(invariant.__name__, invariant)
    race_checker.check(state=state).assert_valid()
