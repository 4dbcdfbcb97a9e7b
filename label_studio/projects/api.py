"""Projects API: a user sees and changes only the projects they created."""
from rest_framework import generics
from rest_framework.pagination import PageNumberPagination

from label_studio.projects.models import Project
from label_studio.projects.serializers import ProjectSerializer


class ProjectPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"


class ProjectListAPI(generics.ListCreateAPIView):
    """``GET/POST /api/projects``: ``{"count", "next", "previous", "results"}`` like upstream."""

    serializer_class = ProjectSerializer
    pagination_class = ProjectPagination

    def get_queryset(self):
        return Project.objects.for_user(self.request.user).with_task_number()

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class ProjectDetailAPI(generics.RetrieveUpdateDestroyAPIView):
    """``GET/PATCH/DELETE /api/projects/{id}``; ``task_number`` is counted in the query."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return Project.objects.for_user(self.request.user).with_task_number()
