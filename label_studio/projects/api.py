"""Projects API: a user sees and changes only the projects they created."""
from rest_framework import generics

from label_studio.projects.models import Project
from label_studio.projects.serializers import ProjectSerializer


class ProjectListAPI(generics.ListCreateAPIView):
    """``GET/POST /api/projects``."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return Project.objects.for_user(self.request.user).with_task_number()

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class ProjectDetailAPI(generics.RetrieveUpdateDestroyAPIView):
    """``GET/PATCH/DELETE /api/projects/{id}``; ``task_number`` is counted in the query."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return Project.objects.for_user(self.request.user).with_task_number()
