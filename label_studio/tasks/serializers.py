from rest_framework import serializers

from label_studio.tasks.models import Task


class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id", "inner_id", "data", "meta", "project", "file_upload", "created_at"]
        read_only_fields = fields
