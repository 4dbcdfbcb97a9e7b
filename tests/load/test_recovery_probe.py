"""The nemesis's recovery probe reads the app's health check over HTTP and its database by SQL, on both databases.

The rows are committed (``transactional_db``), so the probe's own connection sees them
as it sees a served app's; the health check is a stub HTTP server answering what the
test sets (the real one's verdicts are tested in ``tests/service``).
"""
import http.server
import threading

import pytest

from label_studio.data_import.models import FileUpload
from racelab.recovery import RecoveryProbe
from tests.factories import ProjectFactory, UserFactory
from tests.load.test_completeness_check import database_url, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def health():
    """A stub app whose health check answers ``health.status``; yields ``(url, settable namespace)``."""
    class Health(http.server.BaseHTTPRequestHandler):
        status = 200

        def do_GET(self):
            self.send_response(Health.status if self.path == "/api/health/import-flow" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", Health
    server.shutdown()


def test_the_app_has_recovered_once_health_answers_200_and_every_import_caught_is_final(health):
    url, answer = health
    project = ProjectFactory(created_by=UserFactory())
    caught_upload = upload(project, 0, status=FileUpload.PROCESSING)
    probe = RecoveryProbe(url, database_url())
    caught = probe.caught()
    assert caught == {("file upload", caught_upload.pk)}
    assert probe.pending(caught) == (f"1 of the 1 imports and files the fault caught are unfinished, "
                                     f"e.g. file upload {caught_upload.pk}")
    upload(project, 0, status=FileUpload.PENDING)  # started after the fault: not the probe's business
    FileUpload.objects.filter(pk=caught_upload.pk).update(status=FileUpload.COMPLETED)
    answer.status = 503
    assert probe.pending(caught) == "the health check answered 503"
    answer.status = 200
    assert probe.pending(caught) is None


def test_an_app_that_does_not_answer_has_not_recovered():
    probe = RecoveryProbe("http://127.0.0.1:9", database_url(), timeout=1)
    assert probe.pending(set()).startswith("the health check did not answer")
