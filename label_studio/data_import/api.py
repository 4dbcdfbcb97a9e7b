"""The import API: thin views over :mod:`label_studio.data_import.services`."""
import hashlib

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views.decorators.http import condition
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from label_studio.data_import import finality, services
from label_studio.data_import.json_body import ImportFormParser, ImportJSONParser
from label_studio.data_import.models import ImportRequest, ProjectImport
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
    With ``?async=true&wait=N`` the 201 comes once the import is final, or after N seconds (as a poll's
    ``?wait=N``); a final import's 201 holds what its poll would answer, so the client need not poll.
    With an ``Idempotency-Key`` header a retry gets the first request's import back, never a second one
    (``services.import_once``); the key with a different request is a 422. An async import that its job
    queue cannot take is a 503 with ``Retry-After``, and nothing is stored.
    """

    parser_classes = [ImportJSONParser, ImportMultiPartParser, ImportFormParser]

    def post(self, request, pk):
        project = user_project(request, pk)
        use_async = query_flag(request, "async", settings.IMPORT_ASYNC_DEFAULT)
        return_task_ids = query_flag(request, "return_task_ids", False)
        wait = poll_wait(request)  # before anything is stored: a bad ?wait= is a 400 that leaves nothing behind
        key = idempotency_key(request)
        try:
            uploads, body_tasks = read_import_request(request)
            once = None if key is None else (key, services.request_fingerprint(
                uploads, body_tasks, use_async=use_async, return_task_ids=return_task_ids))
            if use_async:
                result = services.start_async_import(project, request.user, uploads, body_tasks, idempotency=once,
                                                      client_waits=wait > 0)
            else:
                result = services.sync_import(project, request.user, uploads, body_tasks, return_task_ids,
                                              idempotency=once)
        except BadImport as exc:
            return Response(exc.response_data(), status=status.HTTP_400_BAD_REQUEST)
        except services.IdempotencyKeyReused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        except services.ImportsUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": str(settings.IMPORT_RETRY_AFTER_SECONDS)})
        if not isinstance(result, ProjectImport):
            return Response(result, status=status.HTTP_201_CREATED)
        body = services.async_response(result, wait)
        if wait and body.get("status") in ProjectImport.FINAL:  # it ended while we waited: what its poll would get
            body = ProjectImportSerializer(result).data | body
        return Response(body, status=status.HTTP_201_CREATED)


def idempotency_key(request):
    """Return the request's ``Idempotency-Key`` header, None without one; 400 when it is empty or too long."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > ImportRequest.MAX_KEY_LENGTH:
        raise ValidationError({"detail": f"The Idempotency-Key header must hold 1 to {ImportRequest.MAX_KEY_LENGTH} "
                                         "characters, e.g. a UUID made once per import and kept for its retries."})
    return key


def polled_import(request, pk, import_pk):
    """Return ``(import, files)``: the async import ``import_pk`` of project ``pk`` if the user owns it (404
    otherwise), without its ``tasks``, and its files' rows (see ``services.file_uploads_of_import``).

    With ``?wait=N`` an unfinished import is read again once it is final, or after N seconds
    (at most ``IMPORT_POLL_WAIT_MAX_SECONDS``; ``finality.wait_until_final``). Read once per
    request: the ETag and the response are made from the same rows.
    """
    if not hasattr(request, "polled_import"):
        wait = poll_wait(request)
        owned = ProjectImport.objects.filter(project__created_by=request.user).defer("tasks")  # as Project.for_user
        project_import = get_object_or_404(owned, project_id=pk, pk=import_pk)
        if project_import.status not in ProjectImport.FINAL and finality.wait_until_final(project_import.id, wait):
            project_import = get_object_or_404(owned, project_id=pk, pk=import_pk)
        request.polled_import = project_import, services.file_uploads_of_import(project_import.id)
    return request.polled_import


def poll_wait(request):
    """Return the seconds of ``?wait=``, capped at ``IMPORT_POLL_WAIT_MAX_SECONDS``; 0 without it, 400 when not a number."""
    value = request.query_params.get("wait")
    if value is None:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds < float("inf"):
        raise ValidationError({"detail": f"wait={value!r} is not a number of seconds; use wait=5 "
                                         f"(at most {settings.IMPORT_POLL_WAIT_MAX_SECONDS:g})."})
    return min(seconds, settings.IMPORT_POLL_WAIT_MAX_SECONDS)


def listed_file_uploads(request, pk):
    """Return the file uploads of project ``pk`` the request lists (``?ids=[1,2]`` and their pages), with counts.

    Read once per request, as :func:`polled_import`. Raise 404 when the user does not own the project,
    400 when ``ids`` is not a list of ids.
    """
    if not hasattr(request, "listed_file_uploads"):
        ids = request.query_params.get("ids")
        if ids is not None:
            try:
                ids = [int(part) for part in ids.strip("[] ").split(",") if part.strip()]
            except ValueError:
                user_project(request, pk)  # a project the user does not own is a 404 first
                raise ValidationError({"detail": f"ids={ids!r} is not a list of ids; use ids=[1,2,3]."})
        listed = services.file_uploads_for_listing(pk, ids, owner=request.user)
        if not listed:  # no rows also when the project is not the user's: that is a 404
            user_project(request, pk)
        request.listed_file_uploads = listed
    return request.listed_file_uploads


def version_tag(values):
    """Return a short ETag value for ``values``, a tuple of what a response shows that can change."""
    return hashlib.blake2b(repr(values).encode(), digest_size=12).hexdigest()


def import_etag(request, pk, import_pk):
    """Return the ETag of an import's status: its status, counters, ``finished_at``, ``updated_at`` and its files.

    Every write that changes what the response shows moves one of them (its
    totals, formats and error are written with its final status; a file that
    fails or commits its tasks changes its own row, not the import's).
    """
    row, files = polled_import(request, pk, import_pk)
    file_states = tuple((file.id, file.status, file.error_message, file.task_count) for file in files)
    return version_tag((row.status, row.task_count, row.annotation_count, row.prediction_count, row.finished_at,
                        row.updated_at, file_states))


def file_uploads_etag(request, pk):
    """Return the ETag of a file-upload list: of each row, all that can change after the file upload is created.

    That is its id (which rows there are), status, ``task_count``, ``tasks_created_at``,
    error and PDF parenthood; the rest of a row is fixed when it is created.
    """
    return version_tag(tuple((row.id, row.status, row.task_count, row.tasks_created_at, row.error_message,
                              row.is_parent_document) for row in listed_file_uploads(request, pk)))


class ProjectImportAPI(APIView):
    """``GET /api/projects/{id}/imports/{pk}[?wait=N]``: an async import's status and counts.

    Polled often, so it answers ``If-None-Match`` with its ETag by a 304, building no body; with
    ``?wait=N`` it answers once the import is final or N seconds have passed (see ``polled_import``).
    """

    @method_decorator(condition(etag_func=import_etag))
    def get(self, request, pk, import_pk):
        project_import, files = polled_import(request, pk, import_pk)
        return Response(ProjectImportSerializer(project_import, context={"files": files}).data)


class FileUploadListAPI(APIView):
    """``GET /api/projects/{id}/file-uploads[?ids=[1,2]]``: file uploads with counts computed in the query.

    Answers ``If-None-Match`` with its ETag by a 304, building no body, as the import status does.
    """

    @method_decorator(condition(etag_func=file_uploads_etag))
    def get(self, request, pk):
        return Response(FileUploadSerializer(listed_file_uploads(request, pk), many=True).data)
