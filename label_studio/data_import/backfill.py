"""Backfill file-upload status for rows that predate status tracking, in small transactions.

Used by migration 0003 and by ``manage.py backfill_file_upload_status`` (to
re-run after a rolling deploy). Each batch is its own transaction, so millions
of rows never sit in one; a row is touched only while it still carries the
migration's default (``pending``, never claimed, no ``tasks_created_at``), so
running it again changes nothing that was already set.
"""
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

NO_TASKS_MESSAGE = "No tasks were found for this file when import status tracking was added; import it again."


def backfill_status(FileUpload, Task, batch_size=1000, leave_newer_than=timedelta(hours=1), now=None):
    """Mark old rows ``completed`` (have tasks) or ``failed`` (none, older than the cut-off); return the counts.

    Rows without tasks newer than ``leave_newer_than`` stay ``pending``: their
    import may still be running under the previous code.
    """
    cutoff = (now or timezone.now()) - leave_newer_than
    untouched = FileUpload.objects.filter(status="pending", claimed_at=None, tasks_created_at=None)
    counts, last_id = {"completed": 0, "failed": 0, "batches": 0}, 0
    while True:
        ids = list(untouched.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return counts
        has_tasks = Exists(Task.objects.filter(file_upload=OuterRef("pk")))
        with transaction.atomic():
            batch = untouched.filter(id__in=ids)
            counts["completed"] += batch.filter(has_tasks).update(status="completed", tasks_created_at=F("created_at"))
            counts["failed"] += batch.filter(~has_tasks, created_at__lt=cutoff).update(
                status="failed", error_message=NO_TASKS_MESSAGE)
        counts["batches"] += 1
        last_id = ids[-1]
