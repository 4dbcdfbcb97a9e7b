"""Shared fixtures of the project's own tests: users, projects, API clients, files."""
import io
import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory

# tests/shop is another app with its own settings and pytest.ini: `pytest -c tests/shop/pytest.ini`.
collect_ignore = ["shop"]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def project(user):
    return ProjectFactory(created_by=user)


@pytest.fixture
def client_for():
    """``client_for(user)``: an API client authenticated by ``Authorization: Token …``."""

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return client

    return make


@pytest.fixture
def api(client_for, user):
    return client_for(user)


def named(name, content):
    """Return an in-memory upload called ``name`` holding ``content`` (str or bytes)."""
    handle = io.BytesIO(content.encode() if isinstance(content, str) else content)
    handle.name = name
    return handle


def json_tasks(count):
    return json.dumps([{"text": f"task {i}", "n": i} for i in range(count)])


def csv_rows(count, delimiter=","):
    return "text" + delimiter + "n\n" + "".join(f"row {i}{delimiter}{i}\n" for i in range(count))


def pdf_bytes(pages, text="Page {n} of the document"):
    """Return a PDF of ``pages`` pages, each with its own line of text."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    document = canvas.Canvas(out)
    for n in range(1, pages + 1):
        document.drawString(72, 720, text.format(n=n))
        document.showPage()
    document.save()
    return out.getvalue()
