"""``GET /api/health/import-flow``: the import flow's health, readable without a token."""
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from label_studio.data_import.metrics import health, import_flow_metrics


class ImportFlowHealthAPI(APIView):
    """Answer 200 with the health body when healthy, 503 when a file is stuck or a count is wrong."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        body = health(import_flow_metrics())
        return Response(body, status=200 if body["status"] == "healthy" else 503)
