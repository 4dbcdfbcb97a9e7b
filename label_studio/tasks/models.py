"""Tasks: one item to label, created by an import."""
from django.db import models


class Task(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="tasks")
    file_upload = models.ForeignKey(
        "data_import.FileUpload", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    data = models.JSONField()
    meta = models.JSONField(default=dict, blank=True)
    inner_id = models.PositiveBigIntegerField(null=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "inner_id"])]

    def __str__(self):
        return f"Task #{self.pk}"
