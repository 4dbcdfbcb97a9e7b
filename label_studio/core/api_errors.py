"""Turn every API error into a JSON body with a ``detail`` a person can act on.

Unexpected exceptions become a 500 with a generic message and an error id that
is logged with the traceback; the traceback itself never reaches the client.
"""
import logging
import uuid

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from label_studio.core.events import event


def exception_handler(exc, context):
    """Return DRF's response for API exceptions, and a traceback-free 500 otherwise."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    error_id = uuid.uuid4().hex[:12]
    event("api.unhandled_error", level=logging.ERROR, error_id=error_id, view=type(context.get("view")).__name__,
          error=repr(exc))
    logging.getLogger("racelab.errors").exception("unhandled error %s", error_id)
    return Response({"detail": f"Internal error {error_id}; the server log has the details."}, status=500)
