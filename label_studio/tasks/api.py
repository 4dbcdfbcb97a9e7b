"""Tasks API: paginated task lists, scoped to the user's projects."""
from django.shortcuts import get_object_or_404
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from label_studio.projects.models import Project
from label_studio.tasks.models import Task
from label_studio.tasks.serializers import TaskSerializer


class TaskPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ListPagination(TaskPagination):
    """Upstream's ``/api/projects/{id}/tasks`` answers a plain list per page."""

    def get_paginated_response(self, data):
        return Response(data)


class ProjectTaskListAPI(generics.ListAPIView):
    """``GET /api/projects/{id}/tasks?page=&page_size=``."""

    serializer_class = TaskSerializer
    pagination_class = ListPagination

    def get_queryset(self):
        project = get_object_or_404(Project.objects.for_user(self.request.user), pk=self.kwargs["pk"])
        return Task.objects.filter(project=project).order_by("id")


class TaskListAPI(generics.ListAPIView):
    """``GET /api/tasks?project=ID``: ``{"tasks": [...], "total": N}`` like upstream."""

    serializer_class = TaskSerializer
    pagination_class = TaskPagination

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        if not project_id or not project_id.isdigit():
            raise ValidationError({"detail": "Give the project: /api/tasks?project=ID."})
        project = get_object_or_404(Project.objects.for_user(self.request.user), pk=int(project_id))
        return Task.objects.filter(project=project).order_by("id")

    def list(self, request, *args, **kwargs):
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        return Response({"tasks": self.get_serializer(page, many=True).data, "total": self.paginator.page.paginator.count,
                         "total_annotations": 0, "total_predictions": 0})
