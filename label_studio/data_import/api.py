"""The import API: thin views over :mod:`label_studio.data_import.services`."""
from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from label_studio.data_import import services
from label_studio.data_import.json_body import ImportFormParser, ImportJSONParser
from label_studio.data_import.models import ProjectImport
from label_studio.data_import.multipart import ImportMultiPartParser
from label_studio.data_import.parsers import BadImport, check_size
from label_studio.data_import.serializers import FileUploadSerializer, ProjectImportSerializer
from label_studio.projects.models import Project

TRUE_VALUES, FALSE_VALUES = ("true", "1", "yes"), ("false", "0", "no")


def user_project(request, pk):
    """Return the project ``pk`` if the requesting user owns it; 404 otherwise (never 403: no existence leak)."""
    return get_object_or_404(Project.objects.for_user(request.user), pk=pk)


def read_import_request(request):
    """Return ``(uploads, body_tasks)`` from a multipart or JSON import request; raise BadImport if neither."""
    uploads = []
    for key in request.FILES:
        for uploaded in request.FILES.getlist(key):
            check_size(uploaded.name, uploaded.size)
            uploads.append(services.Upload(name=uploaded.name, content=uploaded.read()))
    body_tasks = None
    if not uploads and not hasattr(request.data, "getlist"):  # a JSON body; a scalar is one (bad) task
        body_tasks = request.data if isinstance(request.data, list) else [request.data]
    return uploads, body_tasks


def query_flag(request, name, default):
    """Return the boolean query parameter ``name`` (``true``/``false``, ``1``/``0``, ``yes``/``no``), else ``default``."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() in TRUE_VALUES:
        return True
    if value.lower() in FALSE_VALUES:
        return False
    raise ValidationError({"detail": f"{name}={value!r} is not a yes or no; use {name}=true or {name}=false."})


class ImportAPI(APIView):
    """``POST /api/projects/{id}/import[?async=true][&return_task_ids=true]``: import files or a JSON list of tasks.

    ``commit_to_project`` is not supported: every import commits its tasks (there is no ``reimport``).
    """

    parser_classes = [ImportJSONParser, ImportMultiPartParser, ImportFormParser]

    def post(self, request, pk):
        project = user_project(request, pk)
        use_async = query_flag(request, "async", settings.IMPORT_ASYNC_DEFAULT)
        return_task_ids = query_flag(request, "return_task_ids", False)
        try:
            uploads, body_tasks = read_import_request(request)
            if use_async:
                project_import = services.start_async_import(project, request.user, uploads, body_tasks)
                return Response(services.async_response(project_import), status=status.HTTP_201_CREATED)
            return Response(services.sync_import(project, request.user, uploads, body_tasks, return_task_ids),
                            status=status.HTTP_201_CREATED)
        except BadImport as exc:
            return Response(exc.response_data(), status=status.HTTP_400_BAD_REQUEST)


class ProjectImportAPI(APIView):
    """``GET /api/projects/{id}/imports/{pk}``: an async import's status and counts."""

    def get(self, request, pk, import_pk):
        # One query, polled often: the import, only within a project the user owns (else 404, as user_project).
        owned = ProjectImport.objects.filter(project__in=Project.objects.for_user(request.user)).defer("tasks")
        project_import = get_object_or_404(owned, project_id=pk, pk=import_pk)
        return Response(ProjectImportSerializer(project_import).data)


class FileUploadListAPI(APIView):
    """``GET /api/projects/{id}/file-uploads[?ids=[1,2]]``: file uploads with counts computed in the query."""

    def get(self, request, pk):
        project = user_project(request, pk)
        ids = request.query_params.get("ids")
        if ids is not None:
            try:
                ids = [int(part) for part in ids.strip("[] ").split(",") if part.strip()]
            except ValueError:
                raise ValidationError({"detail": f"ids={ids!r} is not a list of ids; use ids=[1,2,3]."})
        uploads = services.file_uploads_for_listing(project, ids)
        return Response(FileUploadSerializer(uploads, many=True).data)
