"""Read the project's file-upload list while an import runs, as a second person watching the page would.

The importer itself only reads after the import reports done, which a race
such as "the file upload commits before its tasks" (R1) never shows: by then
the tasks are in. A watcher greenlet reads during the import and records
``completed_before_tasks`` when one of the import's file uploads shows
``completed`` with a wrong task count. It runs for a share of imports
(``--watch-ratio``), only in projects one user owns, only against targets that
report a status, and never past the import's end or ``WATCH_READS`` reads.
"""
import contextlib
import random

import gevent  # Locust's own concurrency: users are greenlets, so is the watcher
from gevent.event import Event

from racelab.locustfiles._checks import matches
from racelab.locustfiles._observations import record_anomaly

WATCH_INTERVAL = 0.1  # seconds between reads: finer than the race windows racelab injects (200 ms)
WATCH_READS = 30      # at most three seconds of watching per import


@contextlib.contextmanager
def watching(user, batch):
    """Watch ``user``'s project while the ``with`` block imports ``batch``; stop when the block ends.

    Does nothing (and sends nothing) for bad files, JSON-body imports, shared
    projects, targets without a status, or an import not drawn by the ratio.
    """
    if (batch.bad or not batch.files or user.shared_project or not user.racelab_target
            or random.random() >= user.settings.watch_ratio):
        yield
        return
    done = Event()
    watcher = gevent.spawn(_watch, user, batch, done)
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=5)


def _watch(user, batch, done):
    expected = {upload.name: upload.expected_tasks for upload in batch.files}
    flagged = set()
    path = f"/api/projects/{user.ledger.project_id}/file-uploads"
    for _ in range(WATCH_READS):
        if done.wait(WATCH_INTERVAL):
            return
        rows = user._get_json(path, "/api/projects/[id]/file-uploads [watch]")
        for row in rows if isinstance(rows, list) else []:
            upload_id = row.get("id")
            if upload_id in user.known_uploads or upload_id in flagged or row.get("parent") is not None:
                continue
            if row.get("status") != "completed":
                continue  # pending / processing with any count is honest
            want = next((n for name, n in expected.items() if matches(row, name)), None)
            if want is not None and row.get("task_count") != want:
                flagged.add(upload_id)
                record_anomaly(user.environment, "completed_before_tasks",
                               f"{batch.label}: a second reader saw #{upload_id} {row.get('file_name')} completed "
                               f"with {row.get('task_count')} of {want} tasks while the import ran")
