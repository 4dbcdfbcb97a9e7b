from rest_framework import serializers

from label_studio.projects.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    """A project; ``task_number`` is counted in the query by ``with_task_number()``."""

    task_number = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Project
        fields = ["id", "title", "description", "label_config", "created_by", "created_at", "task_number"]
        read_only_fields = ["id", "created_by", "created_at", "task_number"]
