"""The byte limits of an import request: bodies and whole requests over them are refused without being held.

The API-level cases (a 400 naming the limit and its setting, nothing stored) are
in ``test_hostile_input.py``; these show what the client cannot see: a body over
the limit is never held in memory (the parsers, then the whole API stack), a
request whose ``Content-Length`` lies is still stopped at
``IMPORT_MAX_REQUEST_BYTES``, and under gunicorn a client that sends all of a
64 MiB request reads its 400 while the web worker's memory stays flat.
"""
import http.client
import io
import json
import os
import tracemalloc
import urllib.request

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from label_studio.data_import.json_body import ImportFormParser, ImportJSONParser
from label_studio.data_import.multipart import ImportMultiPartParser
from tests.service.test_hostile_input import multipart, tasks_json

MiB = 1024 * 1024


class EndlessJSON:
    """A request body of ``size`` bytes (a JSON list, never all in memory) that counts what was read of it."""

    def __init__(self, size):
        self.size, self.position = size, 0

    def read(self, size=-1):
        size = self.size - self.position if size is None or size < 0 else min(size, self.size - self.position)
        start, self.position = self.position, self.position + size
        return (b"[" if start == 0 and size else b"") + b" " * (size - (1 if start == 0 and size else 0))

    readline = read  # a WSGI input has both; none of the parsers reads lines


def parser_context(content_length, body=b"", content_type="application/json"):
    request = Request(APIRequestFactory().generic("POST", "/api/projects/1/import", body, content_type))
    if content_length is None:
        request.META.pop("CONTENT_LENGTH", None)
    else:
        request.META["CONTENT_LENGTH"] = str(content_length)
    return {"request": request}


def peak_bytes(action):
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("parser", [ImportJSONParser, ImportFormParser], ids=["json", "form"])
@pytest.mark.parametrize("declared", [32 * MiB, None, 10], ids=["honest-length", "no-length", "lying-length"])
def test_a_body_over_the_limit_is_refused_without_being_held_in_memory(settings, parser, declared):
    settings.IMPORT_MAX_FILE_BYTES = MiB
    body = EndlessJSON(32 * MiB)
    refused = []

    def parse():
        with pytest.raises(ParseError) as caught:
            parser().parse(body, parser.media_type, parser_context(declared))
        refused.append(caught.value.detail["detail"])

    peak = peak_bytes(parse)

    counted = "32 MiB" if declared == 32 * MiB else "more than 1 MiB"
    assert peak < 3 * MiB, f"refusing a 32 MiB body over a 1 MiB limit took {peak / MiB:.1f} MiB ({counted})"
    assert "the body is" in refused[0] and "over the limit of 1048576 bytes" in refused[0], refused[0]
    assert "the IMPORT_MAX_FILE_BYTES setting" in refused[0], refused[0]
    assert body.position == body.size, "the rest of the body was not drained: the client may never read the 400"


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_limit_is_refused_through_the_api_without_being_held_in_memory(api, project, settings,
                                                                                      content_type):
    """Through DRF and Django, which hand a ``JSONParser`` or ``FormParser`` the whole ``request.body``."""
    settings.IMPORT_MAX_FILE_BYTES = MiB
    body = EndlessJSON(32 * MiB)
    responses = []

    peak = peak_bytes(lambda: responses.append(api.generic(
        "POST", f"/api/projects/{project.id}/import", b"", content_type,
        **{"wsgi.input": body, "CONTENT_LENGTH": str(body.size)})))

    assert responses[0].status_code == 400, responses[0].content
    assert "the body is 33554432 bytes, over the limit of 1048576 bytes" in responses[0].json()["detail"]
    assert peak < 8 * MiB, f"refusing a 32 MiB body over a 1 MiB limit took {peak / MiB:.1f} MiB"
    assert body.position == body.size, "the rest of the body was not drained: the client may never read the 400"


def test_a_body_at_the_limit_is_parsed(settings):
    settings.IMPORT_MAX_FILE_BYTES = 1000
    content = tasks_json(1, pad=1000 - len(tasks_json(1)))
    assert len(content) == 1000

    parsed = ImportJSONParser().parse(io.BytesIO(content), "application/json", parser_context(len(content)))

    assert parsed == [{"text": "x" * 986}]


def test_a_multipart_request_over_the_total_is_stopped_while_it_streams(settings):
    """Its ``Content-Length`` says 100 bytes; Django's parser reads to the end of the stream, 4201 bytes."""
    settings.IMPORT_MAX_FILE_BYTES, settings.IMPORT_MAX_REQUEST_BYTES = 1000, 3000
    body, content_type = multipart(*[(f"part{n}.json".encode(), tasks_json(1, pad=900)) for n in range(4)])
    stream = io.BytesIO(body)

    with pytest.raises(ParseError) as caught:
        ImportMultiPartParser().parse(stream, content_type, parser_context(100, body, content_type))

    detail = caught.value.detail["detail"]
    assert detail.startswith("the request: the upload is more than 3000 bytes, over the limit of 3000 bytes."), detail
    assert "the IMPORT_MAX_REQUEST_BYTES setting" in detail, detail
    assert stream.tell() == len(body), "the rest of the request was not drained"


@pytest.mark.django_db
def test_a_form_body_over_the_limit_is_a_400_naming_it(api, project, settings):
    settings.IMPORT_MAX_FILE_BYTES = 1000
    response = api.generic("POST", f"/api/projects/{project.id}/import", b"a=" + b"x" * 2000,
                           "application/x-www-form-urlencoded")

    assert response.status_code == 400, response.content
    assert response.json()["detail"] == ("the request body: the body is 2002 bytes, over the limit of 1000 bytes. "
                                         "Send it in smaller requests (the limit is the IMPORT_MAX_FILE_BYTES setting).")


@pytest.fixture(scope="module")
def served():
    """The app under gunicorn with 1 MiB and 3 MiB limits: one web worker, no job workers; a few seconds to start."""
    from racelab.serving import served_app

    limits = {"IMPORT_MAX_FILE_BYTES": str(MiB), "IMPORT_MAX_REQUEST_BYTES": str(3 * MiB)}
    with served_app(db="sqlite", workers=0, web_workers=1, extra_env=limits, log=open(os.devnull, "w")) as app:
        request = urllib.request.Request(f"{app.url}/api/projects", data=json.dumps({"title": "limits"}).encode(),
                                         headers={"Authorization": f"Token {app.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            app.project_id = json.loads(response.read())["id"]
        yield app


def peak_rss_mib(pid):
    """Return the peak resident memory of process ``pid`` in MiB (Linux's VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) / 1024


def send_streaming(app, content_type, chunks, length):
    """POST ``chunks`` (``length`` bytes in all) to the import as a client would, all of it; return (status, body)."""
    connection = http.client.HTTPConnection(app.url.removeprefix("http://"), timeout=60)
    connection.putrequest("POST", f"/api/projects/{app.project_id}/import")
    for name, value in {"Authorization": f"Token {app.token}", "Content-Type": content_type,
                        "Content-Length": str(length)}.items():
        connection.putheader(name, value)
    connection.endheaders()
    for chunk in chunks:
        connection.send(chunk)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


@pytest.mark.parametrize("kind", ["json body", "multipart"])
def test_a_request_over_its_limit_gets_its_400_from_gunicorn_and_leaves_the_worker_small(served, kind):
    """The client sends all 64 MiB and reads the 400 (the rest was drained); the web worker never holds the bytes."""
    master = served.processes[0].pid
    with open(f"/proc/{master}/task/{master}/children") as children:
        [web] = children.read().split()
    before = peak_rss_mib(web)
    if kind == "json body":
        chunks, content_type = [b"["] + [b" " * MiB] * 64 + [b"]"], "application/json"
    else:
        part = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\n", (b"x" * 1023 + b"\n") * 512,
                b"\r\n")
        chunks, content_type = [piece for _ in range(64) for piece in part] + [b"--B--\r\n"], "multipart/form-data; boundary=B"

    status, body = send_streaming(served, content_type, chunks, sum(map(len, chunks)))

    setting = "IMPORT_MAX_FILE_BYTES" if kind == "json body" else "IMPORT_MAX_REQUEST_BYTES"
    assert status == 400 and f"the {setting} setting" in body["detail"], (status, body)
    after = peak_rss_mib(web)
    assert after - before < 16, f"the web worker's peak RSS grew from {before:.0f} to {after:.0f} MiB refusing {kind}"
