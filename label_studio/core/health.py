"""``GET /api/health/import-flow``: the import flow's health; anyone gets the counts, a user their own file ids.

Anonymous callers (probes, the load suite's start-up check) get aggregate figures only;
``stuck_file_ids`` and ``count_mismatch_ids`` are left out, since file ids would tell a
stranger about every user's imports. A caller with a token or session gets those two
lists limited to the file uploads of their own projects. The counts are whole-database
for both: they are what the alerts and the load report read.
"""
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from label_studio.data_import.metrics import health, import_flow_metrics
from label_studio.data_import.models import FileUpload
from label_studio.projects.models import Project

ID_LISTS = ("stuck_file_ids", "count_mismatch_ids")


class ImportFlowHealthAPI(APIView):
    """Answer 200 with the health body when healthy; 503 naming each problem and its fix otherwise.

    Unhealthy: Redis unreachable (a 503, never a 500), no live rq worker, an import or a file
    not final after ``IMPORT_STUCK_AFTER_SECONDS``, or a completed file without all its tasks.
    """

    permission_classes = [AllowAny]

    def get(self, request):
        if request.user.is_authenticated:
            metrics = import_flow_metrics(ids_within=FileUpload.objects.filter(
                project__in=Project.objects.for_user(request.user)))
        else:
            metrics = {key: value for key, value in import_flow_metrics().items() if key not in ID_LISTS}
        body = health(metrics)
        return Response(body, status=200 if body["status"] == "healthy" else 503)
