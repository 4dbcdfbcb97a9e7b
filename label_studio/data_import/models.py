"""File uploads and async project imports.

``FileUpload.status`` moves ``pending → processing → completed | failed`` and
never backwards; ``completed`` means its tasks are committed and visible. A PDF
has one parent file upload and one child per page; the parent is ``completed``
only when every page is. A ``failed`` upload keeps its row and its
``error_message`` but not its stored file (``file`` is empty). ``ProjectImport``
records one async import: ``created → in_progress → completed | failed``, and
``failed`` when any of its files failed, its other files' tasks committed.
``ImportRequest`` remembers an import request sent with an ``Idempotency-Key``.
"""
import functools
import os

from django.conf import settings
from django.db import models
from django.db.models.expressions import RawSQL


# Truncate rather than refuse: upstream imports any name a browser sends, and users see original_name, not this.
STORED_NAME_MAX_BYTES = 200  # file systems allow 255 bytes; Django may add "_" and 7 characters to a taken name


def upload_path(instance, filename):
    """Return where ``filename`` is stored: cut to ``STORED_NAME_MAX_BYTES`` of UTF-8, its extension kept."""
    stem, extension = os.path.splitext(filename)
    stem = stem.encode()[:STORED_NAME_MAX_BYTES - len(extension.encode())].decode("utf-8", "ignore")
    return f"upload/{instance.project_id}/{stem}{extension}"


class FileUploadQuerySet(models.QuerySet):
    def with_task_count(self):
        """Annotate ``task_count`` in the query: own tasks, plus the pages' tasks for a PDF parent.

        For a listing of file uploads, not a subquery of another query: the count
        names the file-upload table itself.
        """
        # Raw SQL: the ORM spent 3 ms compiling the two counting subqueries, on every poll of a status or a list.
        return self.annotate(task_count=RawSQL(_task_count_sql(), (), output_field=models.IntegerField()))


@functools.cache
def _task_count_sql():
    from django.db import connection

    from label_studio.tasks.models import Task

    name = connection.ops.quote_name
    uploads, tasks = name(FileUpload._meta.db_table), name(Task._meta.db_table)
    file_upload, parent = name(Task._meta.get_field("file_upload").column), name(FileUpload._meta.get_field("parent").column)
    return (f"(SELECT COUNT(*) FROM {tasks} WHERE {tasks}.{file_upload} = {uploads}.{name('id')})"
            f" + (SELECT COUNT(*) FROM {tasks} INNER JOIN {uploads} page ON {tasks}.{file_upload} = page.{name('id')}"
            f" WHERE page.{parent} = {uploads}.{name('id')})")


class FileUpload(models.Model):
    PENDING, PROCESSING, COMPLETED, FAILED = "pending", "processing", "completed", "failed"
    STATUS_CHOICES = [(PENDING, "Pending"), (PROCESSING, "Processing"), (COMPLETED, "Completed"), (FAILED, "Failed")]
    FINAL = (COMPLETED, FAILED)
    ACTIVE = (PENDING, PROCESSING)  # not final: filtering on these uses the status index; excluding FINAL scans

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="file_uploads")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="file_uploads")
    file = models.FileField(upload_to=upload_path, max_length=500)
    original_name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=PENDING, db_index=True)
    tasks_created_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a job claimed it (stale claims are retried).")
    claim_token = models.UUIDField(null=True, blank=True, help_text="The current claim's token: only it may commit the tasks.")
    claimed_by = models.CharField(max_length=200, blank=True, default="",
                                  help_text="The RQ worker and job holding the claim, for the reconciler to see it is dead.")
    job_id = models.CharField(max_length=64, blank=True, default="",
                              help_text="A PDF page's RQ job, for the reconciler to see that it was lost.")
    is_parent_document = models.BooleanField(default=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="pages")
    page_number = models.PositiveIntegerField(null=True, blank=True)
    pages_total = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    project_import = models.ForeignKey(
        "data_import.ProjectImport", null=True, blank=True, on_delete=models.SET_NULL, related_name="file_uploads"
    )

    objects = FileUploadQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"FileUpload #{self.pk} {self.file_name}"

    @property
    def file_name(self):
        """Return the name the user uploaded (the stored name may carry a unique prefix)."""
        return self.original_name or os.path.basename(self.file.name)

    @property
    def format(self):
        """Return the lower-case extension of the uploaded name, e.g. ``.csv``."""
        return os.path.splitext(self.file_name)[1].lower()


class ProjectImport(models.Model):
    CREATED, IN_PROGRESS, COMPLETED, FAILED = "created", "in_progress", "completed", "failed"
    STATUS_CHOICES = [(CREATED, "Created"), (IN_PROGRESS, "In progress"), (COMPLETED, "Completed"), (FAILED, "Failed")]
    FINAL = (COMPLETED, FAILED)
    ACTIVE = (CREATED, IN_PROGRESS)  # not final, as FileUpload.ACTIVE

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="imports")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=CREATED, db_index=True)
    job_id = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    tasks = models.JSONField(null=True, blank=True, help_text="Tasks posted as a JSON body, imported by the job.")
    file_upload_ids = models.JSONField(default=list)
    commit_to_project = models.BooleanField(default=True)
    task_count = models.PositiveIntegerField(default=0)
    annotation_count = models.PositiveIntegerField(default=0)
    prediction_count = models.PositiveIntegerField(default=0)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds from creation to a final status.")
    found_formats = models.JSONField(default=dict)
    data_columns = models.JSONField(default=list)
    could_be_tasks_list = models.BooleanField(default=False)
    error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    enqueue_failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When its job could not be sent to Redis; the reconciler sends it again.")

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"ProjectImport #{self.pk} {self.status}"


class ImportRequest(models.Model):
    """An import request sent with an ``Idempotency-Key``: a retry with the same key gets its result back.

    One row per user, project and key (a unique constraint, so two concurrent
    requests with one key make one import). ``fingerprint`` is a hash of the
    request's files, body and options: the same key with another request is
    refused. A sync import keeps its ``response``; an async one its
    ``project_import``, whose current status the retry reports. Rows older than
    ``IMPORT_IDEMPOTENCY_KEY_HOURS`` are expired: their key may be used again.
    """

    MAX_KEY_LENGTH = 255

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = models.CharField(max_length=64)
    response = models.JSONField(null=True, blank=True)
    project_import = models.ForeignKey(ProjectImport, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project", "key"], name="unique_import_request_key")]

    def __str__(self):
        return f"ImportRequest {self.key!r} of user #{self.user_id}"
