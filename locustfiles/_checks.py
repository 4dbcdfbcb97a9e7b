"""Judge what a target shows after an import against what was sent.

Pure functions over the JSON the API returned: they send no request and
record nothing; :mod:`racelab.locustfiles._common` reads, calls these, and records each
:class:`Finding` as an anomaly under its name.
"""
from dataclasses import dataclass, field

# Every anomaly the load suite can record, with what it means. Reports show the names as given.
ANOMALIES = {
    "task_count_mismatch": "a task count read after the import reported done differs from the tasks sent",
    "zero_tasks_after_done": "a file upload shows 0 tasks although its import reported done",
    "status_not_final": "a file upload is not completed although its import reported done",
    "file_upload_missing": "a file upload id from the import response is absent from the file-upload list",
    "file_upload_failed": "a file upload of a good file ended failed",
    "project_count_mismatch": "the project's task total disagrees with the tasks this run confirmed",
    "page_count_mismatch": "a PDF has a different number of page file uploads than pages",
    "parent_sum_mismatch": "a PDF's task count is not the sum of its pages' task counts",
    "parent_completed_early": "a PDF is completed while one of its pages is not",
    "bad_file_accepted": "a deliberately bad file was not refused with a 400",
    "import_failed": "an async import of good input ended failed",
    "stuck_import": "an async import was not completed or failed by the deadline",
    "no_poll_url": "an async import response from a racelab target does not say where to poll",
    "never_displayed": "an import's tasks never showed with the right count before the deadline",
    "completed_before_tasks": "a second reader saw a file upload completed before all its tasks were visible",
}
# The anomalies that are wrong task counts: the task-count accuracy metric counts these.
COUNT_ANOMALIES = frozenset({"task_count_mismatch", "zero_tasks_after_done", "project_count_mismatch",
                             "parent_sum_mismatch"})
FINAL_STATUSES = ("completed", "failed")


@dataclass
class Finding:
    """One broken expectation: the anomaly's name and what was seen."""

    anomaly: str
    detail: str


@dataclass
class FileUploadVerdict:
    """What one read of the file-upload list showed for one import."""

    findings: list = field(default_factory=list)
    statuses: list = field(default_factory=list)  # one per file upload of the import; None if unreported
    has_task_count: bool = True
    has_status: bool = True

    @property
    def pending(self):
        """Return how many of the import's file uploads are not in a final state."""
        return sum(1 for s in self.statuses if s is not None and s not in FINAL_STATUSES)


def check_file_uploads(rows, ids, uploads, expected_total):
    """Return the :class:`FileUploadVerdict` of ``rows`` (the list) for file uploads ``ids``.

    ``uploads`` are the :class:`~racelab.locustfiles._payloads.Upload` objects sent (empty
    for a JSON-body import); a row is matched to its upload by file name where the
    target reports one, and otherwise only the import's total is compared. Keys
    the target lacks (``task_count``, ``status``) are reported on the verdict and
    not checked; nothing here raises on a malformed row.
    """
    verdict = FileUploadVerdict()
    by_id = {row.get("id"): row for row in rows if isinstance(row, dict)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        verdict.findings.append(Finding("file_upload_missing", f"file uploads {missing} not in the list"))
    ours = [by_id[i] for i in ids if i in by_id and by_id[i].get("parent") is None]
    if not ours:
        return verdict
    verdict.has_status = all("status" in row for row in ours)
    verdict.has_task_count = all("task_count" in row for row in ours)
    verdict.statuses = [row.get("status") for row in ours]
    if verdict.has_status:
        not_final = [_label(r) for r in ours if r["status"] not in FINAL_STATUSES]
        failed = [_label(r) for r in ours if r["status"] == "failed"]
        if not_final:
            verdict.findings.append(Finding("status_not_final", f"still {_statuses(ours)}: {', '.join(not_final)}"))
        if failed:
            errors = "; ".join(str(r.get("error_message") or "no error_message") for r in ours if r["status"] == "failed")
            verdict.findings.append(Finding("file_upload_failed", f"{', '.join(failed)} failed: {errors}"))
        if not_final or failed:
            return verdict  # an honest "processing" or "failed" explains any count
    if verdict.has_task_count:
        verdict.findings.extend(_count_findings(ours, uploads, expected_total))
    return verdict


def _count_findings(rows, uploads, expected_total):
    seen = sum(_int(row.get("task_count")) for row in rows)
    if seen == expected_total:
        matched = [(u, r) for u in uploads for r in rows if matches(r, u.name)]
        wrong = [f"{_label(r)} shows {r.get('task_count')}, sent {u.expected_tasks}"
                 for u, r in matched if _int(r.get("task_count")) != u.expected_tasks]
        return [Finding("task_count_mismatch", "; ".join(wrong))] if wrong else []
    if seen == 0:
        return [Finding("zero_tasks_after_done", f"{_names(rows)} show 0 tasks, sent {expected_total}")]
    return [Finding("task_count_mismatch", f"{_names(rows)} show {seen} tasks, sent {expected_total}")]


def check_pages(rows, parent_ids, pages):
    """Return the findings for the page file uploads of PDFs ``parent_ids`` (``pages`` in all).

    Returns no finding when the target lists no page file uploads at all (it does
    not fan PDFs out, or does not say so): the caller notes that once.
    """
    parents = {row.get("id"): row for row in rows if row.get("id") in parent_ids}
    children = [row for row in rows if row.get("parent") in parent_ids]
    if not children:
        return []
    findings = []
    if len(children) != pages:
        findings.append(Finding("page_count_mismatch", f"{len(children)} page file uploads for {pages} pages"))
    for pid, parent in parents.items():
        own = [c for c in children if c.get("parent") == pid]
        if "task_count" in parent and all("task_count" in c for c in own):
            total = sum(_int(c["task_count"]) for c in own)
            if _int(parent["task_count"]) != total:
                findings.append(Finding("parent_sum_mismatch",
                                        f"{_label(parent)} shows {parent['task_count']}, its pages sum to {total}"))
        if parent.get("status") == "completed":
            open_pages = [c for c in own if c.get("status") != "completed"]
            if open_pages:
                findings.append(Finding("parent_completed_early",
                                        f"{_label(parent)} completed with {len(open_pages)} pages not completed"))
    return findings


def check_project_total(seen, expected, shared, slack=0):
    """Return a ``project_count_mismatch`` finding, or ``None`` when ``seen`` is right.

    A project only this user writes to must show exactly ``expected``, plus up
    to ``slack`` tasks of earlier imports whose outcome is unknown (stuck, or
    their request failed); a shared one must show at least ``expected`` (other
    users' imports may be in flight). Fewer tasks than confirmed is always wrong.
    """
    if expected <= seen <= expected + slack or (shared and seen > expected):
        return None
    relation = "at least " if shared else (f"{expected} to " if slack else "")
    wanted = expected + slack if slack and not shared else expected
    return Finding("project_count_mismatch", f"project shows {seen} tasks, expected {relation}{wanted}")


def matches(row, name):
    """Return whether file-upload ``row`` is the upload sent as ``name`` (targets may prefix or strip paths)."""
    base = name.rsplit("/", 1)[-1]
    return row.get("file_name") == base or str(row.get("file") or "").endswith(base)


def _label(row):
    return f"#{row.get('id')} {row.get('file_name') or str(row.get('file') or '').rsplit('/', 1)[-1]}".strip()


def _names(rows):
    return ", ".join(_label(r) for r in rows)


def _statuses(rows):
    return "/".join(sorted({str(r.get("status")) for r in rows}))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
