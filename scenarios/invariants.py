"""The race catalogue's invariants: functions ``(history, state) -> [Anomaly]`` for racelab.harness.checker.

``history`` is the scenario's :class:`racelab.harness.history.History` (requests, readers, jobs, the
reconciler, each an operation); ``state`` is a dict the scenario builds at the end: the final
rows (``uploads``, ``imports``, ``tasks``…) and, where the invariant is about an order, the
sync-points ``trace``. Each anomaly is one sentence naming the operations involved. They check
the catalogue's invariant (DESIGN.md), not the scenario's forced schedule, so they hold for any
interleaving the scheduler explores.
"""
from __future__ import annotations

from collections import Counter

from racelab.harness.checker import Anomaly
from racelab.harness.history import _short

RUN_IMPORT = "label_studio.data_import.services.run_import"
STATES = ("pending", "processing", "completed", "failed")


# --- R1 -------------------------------------------------------------------------------------------


def sync_upload_has_all_its_tasks(history, state=None):
    """R1: a reader never sees a synchronously imported file upload without all its tasks."""
    anomalies = []
    imports = history.pairs("sync import", ok=True)
    for r_inv, r_done in history.pairs("list uploads", ok=True):
        for i_inv, i_done in imports:
            expected = i_done.value["tasks_per_upload"]
            for fu_id, want in expected.items():
                seen = r_done.value.get(str(fu_id)) or r_done.value.get(fu_id)
                if seen is not None and seen["task_count"] != want:
                    anomalies.append(Anomaly("sync_upload_has_all_its_tasks", (
                        f"{r_inv.process}'s list uploads at {r_done.at} saw file upload {fu_id} "
                        f"({seen['status']}) with {seen['task_count']} of the {want} tasks that "
                        f"{i_inv.process}'s sync import committed for it (returned at {i_done.at}): "
                        f"the upload committed before its tasks."), (i_inv, i_done, r_inv, r_done)))
    return anomalies


# --- R2 -------------------------------------------------------------------------------------------


def job_never_precedes_its_commit(history, state):
    """R2: a worker never looks up a row its enqueuer has not committed (from the sync-points trace)."""
    trace, anomalies = state["trace"], []
    requests = {op.value.get("import"): (inv, op) for inv, op in history.pairs("async import", ok=True)
                if isinstance(op.value, dict)}
    for index, hit in enumerate(trace):
        if hit["point"] != "import.async_before_commit":
            continue
        import_id, actor = hit["context"]["import_id"], hit["actor"]
        commit = next((i for i in range(index + 1, len(trace))
                       if trace[i]["point"] == "db.on_commit" and trace[i]["actor"] == actor), None)
        start = next((i for i, h in enumerate(trace) if h["point"] == "job.start" and h["context"].get("job") == RUN_IMPORT
                      and tuple(h["context"].get("args") or ())[:1] == (import_id,)), None)
        missing = [h for h in trace if h["point"] == "import.job_row_missing" and h["context"].get("import_id") == import_id]
        ops = requests.get(import_id, ())
        who = f"{ops[0].process}'s async import {import_id}" if ops else f"the async import {import_id}"
        if start is not None and (commit is None or start < commit):
            anomalies.append(Anomaly("job_never_precedes_its_commit", (
                f"{trace[start]['actor']}'s run_import({import_id}) started (trace #{start}) before {who} "
                f"committed (trace #{commit}): the job was enqueued before the commit"
                + (", and found no row." if missing else ".")), tuple(ops)))
        elif missing:
            anomalies.append(Anomaly("job_never_precedes_its_commit", (
                f"run_import({import_id}) found no row for {who}."), tuple(ops)))
    return anomalies


# --- R3 -------------------------------------------------------------------------------------------


def pdf_fan_in_is_exact(history, state):
    """R3: parent completed ⇔ all pages completed; pages_done and the parent's count equal the pages'."""
    uploads, anomalies = state["uploads"], []
    jobs = history.pairs("process_pdf_pages")
    names = " and ".join(f"{inv.process}'s process_pdf_pages({_short(inv.value)})" for inv, _ in jobs) or "the page jobs"
    for parent_id, parent in uploads.items():
        pages = [fu for fu in uploads.values() if fu["parent"] == parent_id]
        if not pages:
            continue
        final = [p for p in pages if p["status"] in ("completed", "failed")]
        all_done = len(final) == len(pages) == parent["pages_total"]
        problems = []
        if (parent["status"] == "completed") != (all_done and all(p["status"] == "completed" for p in pages)):
            problems.append(f"parent is {parent['status']!r} while {len(final)} of its {len(pages)} pages are final")
        if parent["pages_done"] != len(final):
            problems.append(f"pages_done is {parent['pages_done']} for {len(final)} final pages (a lost update)")
        if parent["task_count"] != sum(p["task_count"] for p in pages):
            problems.append(f"its count {parent['task_count']} is not the pages' {sum(p['task_count'] for p in pages)}")
        if problems:
            anomalies.append(Anomaly("pdf_fan_in_is_exact", (
                f"After {names}, PDF file upload {parent_id}: {'; '.join(problems)}."),
                tuple(op for pair in jobs for op in pair if op is not None)))
    return anomalies


# --- R4 -------------------------------------------------------------------------------------------


def no_job_for_a_rolled_back_transaction(history, state):
    """R4: no job is sent, delayed or not, for a transaction that rolled back."""
    anomalies = []
    for inv, done in history.pairs("async import"):
        if done is None or done.type == "ok":
            continue
        for job in state["sent_jobs"]:
            anomalies.append(Anomaly("no_job_for_a_rolled_back_transaction", (
                f"{inv.process}'s async import rolled back at {done.at} ({done.error}), yet job {job['func']}"
                f"{tuple(job['args'])} was {job['where']} for it: a dispatch that did not wait for the commit."),
                (inv, done)))
    return anomalies


# --- R5 -------------------------------------------------------------------------------------------


def status_tells_processing_from_empty(history, state):
    """R5: every upload reports one of the four states, and ``completed`` only once its tasks are visible."""
    uploads, anomalies = state["uploads"], []
    for r_inv, r_done in history.pairs("list uploads", ok=True):
        for fu_id, seen in r_done.value.items():
            final = uploads.get(int(fu_id))
            if seen["status"] not in STATES:
                anomalies.append(Anomaly("status_tells_processing_from_empty", (
                    f"{r_inv.process}'s list uploads at {r_done.at} saw file upload {fu_id} in state "
                    f"{seen['status']!r}, not one of {', '.join(STATES)}."), (r_inv, r_done)))
            elif final and seen["status"] == "completed" and seen["task_count"] != final["task_count"]:
                anomalies.append(Anomaly("status_tells_processing_from_empty", (
                    f"{r_inv.process}'s list uploads at {r_done.at} saw file upload {fu_id} 'completed' with "
                    f"{seen['task_count']} tasks, but its import committed {final['task_count']}: "
                    f"'processing' looked like an empty file."), (r_inv, r_done)))
    return anomalies


# --- R6 -------------------------------------------------------------------------------------------


def listed_count_is_committed_count(history, state):
    """R6: a listing read after the import finished reports the committed count of every upload."""
    uploads, anomalies = state["uploads"], []
    finished = [done for _, done in history.pairs("run_import", ok=True)]
    for r_inv, r_done in history.pairs("list uploads", ok=True):
        if not finished or r_inv.time < max(d.time for d in finished):
            continue
        for fu_id, seen in r_done.value.items():
            final = uploads.get(int(fu_id))
            if final and seen["task_count"] != final["task_count"]:
                anomalies.append(Anomaly("listed_count_is_committed_count", (
                    f"{r_inv.process}'s list uploads at {r_done.at}, begun after the import job finished, "
                    f"reported {seen['task_count']} tasks for file upload {fu_id}, which has "
                    f"{final['task_count']} committed: a stale cached count."), (r_inv, r_done)))
    return anomalies


# --- R7 -------------------------------------------------------------------------------------------


def client_reaches_completed(history, state):
    """R7: a client that follows only the import response reaches ``completed`` with the right counts."""
    anomalies = []
    for inv, done in history.pairs("follow import"):
        want = inv.value["tasks"]
        if done is None or done.type != "ok":
            anomalies.append(Anomaly("client_reaches_completed", (
                f"{inv.process}'s follow import of {want} tasks could not reach a final state from the "
                f"response alone: {done.error if done is not None else 'it never completed'}."),
                (inv,) + ((done,) if done is not None else ())))
        elif (done.value.get("status"), done.value.get("task_count")) != ("completed", want):
            anomalies.append(Anomaly("client_reaches_completed", (
                f"{inv.process}'s follow import ended {done.value.get('status')!r} with "
                f"{done.value.get('task_count')} tasks instead of 'completed' with {want}."), (inv, done)))
    return anomalies


# --- R8 and R10: nothing stuck ----------------------------------------------------------------


def no_import_stuck_after_recovery(history, state):
    """R8/R10: after the reconciler and a worker, every import and file upload is ``completed`` or ``failed``."""
    anomalies = []
    recon = history.pairs("reconcile", ok=True)
    by = (f"{recon[-1][0].process}'s reconcile (which re-dispatched {_short(recon[-1][1].value)})"
          if recon else "recovery")
    for import_id, row in state["imports"].items():
        if row["status"] not in ("completed", "failed"):
            anomalies.append(Anomaly("no_import_stuck_after_recovery", (
                f"Import {import_id} is still {row['status']!r} after {by}: nothing will ever finish it."),
                tuple(op for pair in recon for op in pair)))
    for fu_id, fu in state["uploads"].items():
        if fu["status"] not in ("completed", "failed"):
            anomalies.append(Anomaly("no_import_stuck_after_recovery", (
                f"File upload {fu_id} is still {fu['status']!r} with {fu['task_count']} tasks after {by}."),
                tuple(op for pair in recon for op in pair)))
    return anomalies


def completed_imports_have_all_tasks(history, state):
    """R8/R9/R10: a completed upload has exactly the tasks of its file, no fewer, no duplicates."""
    anomalies = []
    jobs = [inv for inv, _ in history.pairs("run_import")]
    names = " and ".join(f"{inv.process}'s run_import" for inv in jobs) or "the jobs"
    for fu_id, want in state["expected_tasks"].items():
        fu = state["uploads"][fu_id]
        if fu["status"] == "completed" and fu["task_count"] != want:
            anomalies.append(Anomaly("completed_imports_have_all_tasks", (
                f"File upload {fu_id} is completed with {fu['task_count']} tasks for the {want} of its file, "
                f"after {names}" + (": its tasks were created twice." if fu["task_count"] > want else ".")),
                tuple(jobs)))
    return anomalies


def no_partial_tasks_visible(history, state):
    """R10: a reader sees all of a (non-PDF) upload's tasks or none of them, whatever its status.

    Holds under any concurrency, and after a worker died mid-job; a PDF parent's count grows page by page.
    """
    anomalies = []
    for r_inv, r_done in history.pairs("list uploads", ok=True):
        for fu_id, seen in r_done.value.items():
            want = state["expected_tasks"].get(int(fu_id))
            pdf = state["uploads"].get(int(fu_id), {}).get("pages_total")
            if want is not None and not pdf and seen["task_count"] not in (0, want):
                anomalies.append(Anomaly("no_partial_tasks_visible", (
                    f"{r_inv.process}'s list uploads at {r_done.at} saw {seen['task_count']} of file upload "
                    f"{fu_id}'s {want} tasks ({seen['status']}): part of a unit of work was visible."),
                    (r_inv, r_done)))
    return anomalies


# --- R11 ------------------------------------------------------------------------------------------


def inner_ids_unique(history, state):
    """R11: task inner ids are unique within a project, and the project's count is exact."""
    anomalies = []
    imports = history.pairs("sync import", ok=True)
    names = " and ".join(f"{inv.process}'s sync import" for inv, _ in imports) or "the imports"
    counts = Counter(state["inner_ids"])
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    if duplicated:
        anomalies.append(Anomaly("inner_ids_unique", (
            f"After {names}, {len(duplicated)} inner id(s) are used twice in project {state['project']} "
            f"(e.g. {duplicated[:3]}): both read the next inner id before either inserted."),
            tuple(op for pair in imports for op in pair)))
    want = sum(done.value["task_count"] for _, done in imports)
    if len(state["inner_ids"]) != want:
        anomalies.append(Anomaly("inner_ids_unique", (
            f"Project {state['project']} has {len(state['inner_ids'])} tasks after {names} returned {want}."),
            tuple(op for pair in imports for op in pair)))
    return anomalies


# --- R12 ------------------------------------------------------------------------------------------


def unit_commits_once(history, state):
    """R12: each file's tasks commit once: its count is the rows sent, no task twice by content, the project's total
    is the sum of its files'."""
    pairs = history.pairs("run_import")
    jobs = tuple(op for pair in pairs for op in pair if op is not None)
    runs = " and ".join(f"{inv.process}'s run_import" for inv, _ in pairs) or "the import jobs"
    anomalies = []
    for fu_id, want in state["expected_tasks"].items():
        seen = state["uploads"][fu_id]["task_count"]
        if seen != want:
            anomalies.append(Anomaly("unit_commits_once", (
                f"File upload {fu_id} has {seen} tasks for the {want} rows sent, after {runs}: a run whose claim "
                f"was released and taken over committed its unit too."), jobs))
    twice = sorted(data for data, n in Counter(state["task_data"]).items() if n > 1)
    if twice:
        anomalies.append(Anomaly("unit_commits_once", (
            f"{len(twice)} task(s) of project {state['project']} were inserted twice by content "
            f"(e.g. {twice[0][:80]}), after {runs}."), jobs))
    total = sum(upload["task_count"] for upload in state["uploads"].values())
    if len(state["task_data"]) != total:
        anomalies.append(Anomaly("unit_commits_once", (
            f"Project {state['project']} has {len(state['task_data'])} tasks but its files count {total}."),
            jobs))
    return anomalies
