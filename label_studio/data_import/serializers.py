"""Serializers of the import API, with upstream Label Studio's keys."""
from rest_framework import serializers

from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.data_import.services import file_uploads_of_import


class FileUploadSerializer(serializers.ModelSerializer):
    """A file upload with ``task_count`` as annotated by the listing query, and its status."""

    file = serializers.SerializerMethodField()
    file_name = serializers.CharField(read_only=True)
    task_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = FileUpload
        fields = ["id", "file", "file_name", "created_at", "task_count", "status", "tasks_created_at", "error_message",
                  "is_parent_document", "parent", "page_number"]
        read_only_fields = fields

    def get_file(self, file_upload):
        return file_upload.file.url if file_upload.file else None


class ProjectImportSerializer(serializers.ModelSerializer):
    """An async import with upstream's keys, plus ``files`` (one entry per uploaded file) and ``failed_files``.

    Upstream's keys keep their meaning; ``task_count`` counts the tasks
    committed, which for a ``failed`` import are its good files' (see
    ``services._finish_import_if_done``). Each entry of ``files`` is
    ``{id, file_name, status, error_message, task_count}``, with the names and
    meanings of the file-upload list.
    """

    def to_representation(self, instance):
        data = super().to_representation(instance)
        files = self.context["files"] if "files" in self.context else file_uploads_of_import(instance.id)
        data["files"] = [{"id": row.id, "file_name": row.original_name, "status": row.status,
                          "error_message": row.error_message, "task_count": row.task_count} for row in files]
        data["failed_files"] = sum(row["status"] == FileUpload.FAILED for row in data["files"])
        return data

    class Meta:
        model = ProjectImport
        fields = ["id", "project", "status", "commit_to_project", "file_upload_ids", "task_count", "annotation_count",
                  "prediction_count", "duration", "found_formats", "data_columns", "could_be_tasks_list", "error",
                  "created_at", "updated_at", "finished_at"]
        read_only_fields = fields
