"""Tasks: one item to label, created by an import."""
from django.db import models


class Task(models.Model):
    """A task. Its indexes are the ones its reads use: every insert of an import updates each of them.

    ``(project, inner_id)`` serves the project's reads (its prefix, ``project``, the foreign key's own
    lookups), so neither column has an index of its own.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="tasks", db_index=False)
    file_upload = models.ForeignKey(
        "data_import.FileUpload", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    data = models.JSONField()
    meta = models.JSONField(default=dict, blank=True)
    inner_id = models.PositiveBigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "inner_id"])]

    def __str__(self):
        return f"Task #{self.pk}"
