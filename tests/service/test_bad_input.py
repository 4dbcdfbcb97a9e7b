"""Bad input: a 400 naming the file and the problem, no stack trace, nothing left behind."""
import io
import json

import pytest

from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import json_tasks, named, pdf_bytes

pytestmark = pytest.mark.django_db


def encrypted_pdf():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(2))))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


BAD_CONTENT = [
    ("broken.json", b"[{\"text\": 1},", "invalid JSON"),
    ("blank.txt", b"\n\n  \n", "no tasks"),
    ("scalars.json", b"[1, 2, 3]", "not a non-empty JSON object"),
    ("deep.json", ("[" * 100 + "]" * 100).encode(), "nested deeper than"),
    ("deeper.json", ("[" * 100000 + "]" * 100000).encode(), "nested deeper than"),
    ("ragged.csv", b"a,b\n1,2\n3\n", "row 3 does not have 2 columns"),
    ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
    ("broken.pdf", b"%PDF-1.4 this is not a pdf", "the PDF cannot be read"),
    ("locked.pdf", encrypted_pdf, "the PDF is encrypted"),
]
BAD_NAMES = [
    ("notes.docx", "is not supported"),
    ("../../etc/passwd.json", "is a path"),
    ("..\\windows.json", "is a path"),
    ("tab\tname.json", "control characters"),
    ("bell\x07.json", "control characters"),
    (".hidden.json", "is a path"),
    ("x" * 250 + ".json", "longer than 200"),
]


def counts():
    return FileUpload.objects.count(), Task.objects.count(), ProjectImport.objects.count()


def multipart(*files):
    """Encode ``(name, bytes)`` pairs as multipart, names verbatim (Django's test client would strip paths)."""
    boundary, parts = "racelabboundary", []
    for name, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_files(api, project, mode, *files):
    body, content_type = multipart(("good.csv", b"text\nkept out\n"), *files)
    return api.generic("POST", f"/api/projects/{project.id}/import?async={mode}", body, content_type)


def assert_refused(response, name, problem, before):
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert problem in detail, detail
    assert "Traceback" not in response.content.decode()
    assert counts() == before


@pytest.mark.parametrize("name, content, problem", BAD_CONTENT, ids=[case[0] for case in BAD_CONTENT])
def test_bad_content_is_a_400_that_names_the_file_and_leaves_nothing(api, project, name, content, problem):
    content = content() if callable(content) else content
    before = counts()

    response = post_files(api, project, "false", (name, content))

    assert_refused(response, name, problem, before)
    assert f"'{name}'" in response.json()["detail"]


@pytest.mark.parametrize("mode", ["false", "true"])
@pytest.mark.parametrize("name, problem", BAD_NAMES, ids=[case[1] for case in BAD_NAMES])
def test_bad_file_name_is_a_400_in_both_modes(api, project, name, problem, mode):
    before = counts()

    response = post_files(api, project, mode, (name, b'[{"a": 1}]'))

    assert_refused(response, name, problem, before)
    assert ("\\t" if "\t" in name else name[:50].replace("\x07", "\\x07")) in response.json()["detail"]


def test_oversized_file_is_a_400_naming_the_limit(api, project, settings):
    settings.IMPORT_MAX_FILE_BYTES = 1000
    before = counts()

    response = api.post(f"/api/projects/{project.id}/import", {"file": named("big.json", json_tasks(200))},
                        format="multipart")

    assert response.status_code == 400
    assert "'big.json'" in response.json()["detail"] and "IMPORT_MAX_FILE_BYTES" in response.json()["detail"]
    assert counts() == before


def test_too_many_tasks_is_a_400_naming_the_limit(api, project, settings):
    settings.IMPORT_MAX_TASKS = 10
    before = counts()

    response = api.post(f"/api/projects/{project.id}/import", {"file": named("many.json", json_tasks(11))},
                        format="multipart")

    assert response.status_code == 400
    assert "11 tasks, over the limit of 10" in response.json()["detail"]
    assert counts() == before


@pytest.mark.parametrize("mode", ["false", "true"])
def test_empty_file_is_a_400_in_both_modes(api, project, mode):
    before = counts()
    assert_refused(post_files(api, project, mode, ("empty.csv", b"")), "empty.csv", "'empty.csv': the file is empty", before)


@pytest.mark.parametrize("body, problem", [([], "no tasks"), ([{"data": "x"}], "'data' that is not an object"),
                                           (["text"], "not a non-empty JSON object")])
def test_bad_json_body_is_a_400(api, project, body, problem):
    before = counts()
    response = api.post(f"/api/projects/{project.id}/import", body, format="json")

    assert response.status_code == 400 and problem in response.json()["detail"]
    assert counts() == before


def test_an_import_failing_midway_rolls_back_everything(api, project, monkeypatch):
    from label_studio.data_import import services

    calls = []
    original = services._create_tasks

    def fail_on_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return original(*args)

    monkeypatch.setattr(services, "_create_tasks", fail_on_second)
    before = counts()
    response = api.post(f"/api/projects/{project.id}/import", {"file": [named("a.csv", "t\n1\n"), named("b.csv", "t\n2\n")]},
                        format="multipart")

    assert response.status_code == 500
    assert "Traceback" not in response.content.decode() and "server log" in response.json()["detail"]
    assert counts() == before
