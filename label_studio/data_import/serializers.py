"""Serializers of the import API, with upstream Label Studio's keys."""
from rest_framework import serializers

from label_studio.data_import.models import FileUpload, ProjectImport


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
    class Meta:
        model = ProjectImport
        fields = ["id", "project", "status", "commit_to_project", "file_upload_ids", "task_count", "annotation_count",
                  "prediction_count", "duration", "found_formats", "data_columns", "could_be_tasks_list", "error",
                  "created_at", "updated_at", "finished_at"]
        read_only_fields = fields
