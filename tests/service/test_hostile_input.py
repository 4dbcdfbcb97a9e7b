"""A corpus of hostile imports: each gets a 400 naming the file (or the body) and the problem, and leaves nothing.

Each case is sent as a multipart file (next to a good file, which must not be
imported either) or as a raw JSON body; body and name cases also go through
``?async=true``, where they are refused in the request too. Async *file content*
is only read by the job, as upstream does: those cases get a 201 and a failed
import whose error is the same message, whose failed rows stay and whose stored
file is deleted; next to good files, the good ones are imported (the last two tests).
Limits (bytes of a body, a file and a request; tasks; pages) are cases too, under
small settings, each naming its setting.
"""
import json
import os
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task
from tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db

SQL_OR_TRACE = ("INSERT", "LINE 1", "Traceback", "DataError", "psycopg", "sqlite3")


def nested(depth):
    """Return a JSON list of one valid task whose text nests ``depth`` containers in all."""
    inner = depth - 3  # the list of tasks, the task and its "data" are three levels
    return '[{"data": {"x": ' + "[" * inner + "]" * inner + "}}]"


@dataclass
class Case:
    id: str
    sent_as: str  # "file" (multipart, next to a good file), "lone file" (multipart, alone) or "body" (raw JSON)
    content: bytes
    problem: str  # a fragment of the message that states the problem
    name: bytes = b""  # the name as sent, or b"*=…" for RFC 2231's filename*=… (a body is "the request body")
    shown: str = ""  # how the message names it (default: the name, quoted)
    modes: tuple = ("false",)  # ?async= values: content in files is only refused in the request when sync
    limits: dict = field(default_factory=dict)  # settings for this case, e.g. a small IMPORT_MAX_FILE_BYTES
    setting: str = ""  # the setting the message must name, for a limit


BODY_MODES = ("false", "true")


def tasks_json(count, pad=0):
    return json.dumps([{"text": "x" * pad} for _ in range(count)]).encode()


TINY_BYTES = {"IMPORT_MAX_FILE_BYTES": 1000, "IMPORT_MAX_REQUEST_BYTES": 3000}
CASES = [
    # NUL: PostgreSQL's jsonb cannot hold U+0000.
    Case("nul-json-escape", "file", b'[{"text": "a\\u0000b"}]', "contains a NUL character", b"nul.json"),
    Case("nul-jsonl", "file", b'{"text": "a\\u0000b"}\n', "contains a NUL character", b"nul.jsonl"),
    Case("nul-csv-cell", "file", b"text\na\x00b\n", "contains a NUL character", b"nul.csv"),
    Case("nul-csv-header", "file", b"te\x00xt\nvalue\n", "contains a NUL character", b"nulhead.csv"),
    Case("nul-tsv-cell", "file", b"text\tn\na\x00b\t1\n", "contains a NUL character", b"nul.tsv"),
    Case("nul-txt-line", "file", b"one\ntw\x00o\n", "contains a NUL character", b"nul.txt"),
    Case("nul-body", "body", b'[{"text": "a\\u0000b"}]', "contains a NUL character", modes=BODY_MODES),
    Case("nul-body-key", "body", b'[{"te\\u0000xt": "a"}]', "contains a NUL character", modes=BODY_MODES),
    # Lone surrogates: not Unicode text; neither UTF-8 nor jsonb can hold them.
    Case("surrogate-json-escape", "file", b'[{"text": "a\\ud800b"}]', "contains a lone surrogate \\ud800",
         b"surrogate.json"),
    Case("low-surrogate-json-escape", "file", b'[{"text": "\\udfff"}]', "contains a lone surrogate \\udfff",
         b"low.json"),
    Case("surrogate-txt-line", "file", "one\na\ud800b\n".encode("utf-8", "surrogatepass"),
         "contains a lone surrogate \\ud800", b"surrogate.txt"),
    Case("surrogate-csv-cell", "file", "text\na\udfffb\n".encode("utf-8", "surrogatepass"),
         "contains a lone surrogate \\udfff", b"surrogate.csv"),
    Case("surrogate-body", "body", b'[{"text": "a\\ud800b"}]', "contains a lone surrogate \\ud800", modes=BODY_MODES),
    # NaN and the infinities: Python's json reads them, JSON (and jsonb) does not have them.
    Case("nan-json", "file", b'[{"v": NaN}]', "NaN is not valid JSON", b"nan.json"),
    Case("infinity-json", "file", b'[{"v": Infinity}]', "Infinity is not valid JSON", b"inf.json"),
    Case("minus-infinity-json", "file", b'[{"v": -Infinity}]', "-Infinity is not valid JSON", b"minf.json"),
    Case("nan-jsonl", "file", b'{"v": 1}\n{"v": NaN}\n', "NaN is not valid JSON", b"nan.jsonl"),
    Case("overflowing-float-json", "file", b'[{"v": 1e400}]', "out of range", b"huge.json"),
    Case("nan-body", "body", b'[{"v": NaN}]', "NaN is not valid JSON", modes=BODY_MODES),
    Case("infinity-body", "body", b'[{"v": Infinity}]', "Infinity is not valid JSON", modes=BODY_MODES),
    Case("minus-infinity-body", "body", b'[{"v": -Infinity}]', "-Infinity is not valid JSON", modes=BODY_MODES),
    Case("overflowing-float-body", "body", b'[{"v": -1e400}]', "out of range", modes=BODY_MODES),
    # Huge integers: Python refuses to read more than sys.get_int_max_str_digits() digits.
    Case("5000-digit-integer-json", "file", b'[{"v": ' + b"9" * 5000 + b"}]", "an integer of 5000 digits is too large",
         b"bigint.json"),
    Case("5000-digit-integer-body", "body", b'[{"v": -' + b"9" * 5000 + b"}]", "an integer of 5000 digits is too large",
         modes=BODY_MODES),
    # Depth: one limit (IMPORT_MAX_JSON_DEPTH, 64) for files and bodies alike.
    Case("65-deep-json", "file", nested(65).encode(), "nested deeper than 64 levels", b"deep65.json"),
    Case("100k-deep-json", "file", b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels", b"deep.json"),
    Case("65-deep-body", "body", nested(65).encode(), "nested deeper than 64 levels", modes=BODY_MODES),
    Case("900-deep-body", "body", nested(900).encode(), "nested deeper than 64 levels", modes=BODY_MODES),
    Case("100k-deep-body", "body", b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels", modes=BODY_MODES),
    Case("100k-deep-object-body", "body", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than 64 levels",
         modes=BODY_MODES),
    # Not JSON at all, as a body.
    Case("string-body", "body", b'"just text"', "task 1 is not a non-empty JSON object", modes=BODY_MODES),
    Case("null-body", "body", b"null", "task 1 is not a non-empty JSON object", modes=BODY_MODES),
    Case("broken-body", "body", b'[{"text": 1},', "invalid JSON", modes=BODY_MODES),
    Case("raw-nul-body", "body", b'[{"text": "a\x00b"}]', "invalid JSON", modes=BODY_MODES),
    Case("latin1-body", "body", '[{"text": "caf\xe9"}]'.encode("latin-1"), "not UTF-8", modes=BODY_MODES),
    # File names that are not UTF-8: Django would drop the part without a word.
    Case("ff-fe-name-alone", "lone file", b'[{"a": 1}]', "the file name is not UTF-8 text", b"\xff\xfe.json",
         "\\xff\\xfe.json", modes=BODY_MODES),
    Case("ff-fe-name-next-to-a-good-file", "file", b'[{"a": 1}]', "the file name is not UTF-8 text", b"\xff\xfe.json",
         "\\xff\\xfe.json", modes=BODY_MODES),
    Case("bad-utf8-rfc2231-name", "file", b'[{"a": 1}]', "the file name is not UTF-8 text", b"*=UTF-8''%FF%FE.json",
         "\ufffd\ufffd.json", modes=BODY_MODES),
    Case("latin1-name", "file", b"text\nx\n", "the file name is not UTF-8 text", "caf\xe9.csv".encode("latin-1"),
         "caf\\xe9.csv", modes=BODY_MODES),
    # Limits: one message form (what was counted, the limit, its setting) for bodies, files and whole requests.
    Case("body-over-the-byte-limit", "body", tasks_json(1, pad=1200), "the body is 1214 bytes, over the limit of 1000 "
         "bytes", modes=BODY_MODES, limits=TINY_BYTES, setting="IMPORT_MAX_FILE_BYTES"),
    Case("file-over-the-byte-limit", "file", tasks_json(1, pad=1200), "the file is 1214 bytes, over the limit of 1000 "
         "bytes", b"big.json", modes=BODY_MODES, limits=TINY_BYTES, setting="IMPORT_MAX_FILE_BYTES"),
    Case("request-over-the-total-limit", "files", tasks_json(1, pad=900), "the upload is 4", b"part.json",
         "the request", modes=BODY_MODES, limits=TINY_BYTES, setting="IMPORT_MAX_REQUEST_BYTES"),
    Case("body-over-the-task-limit", "body", tasks_json(4), "the body holds 4 tasks, over the limit of 3 tasks",
         modes=BODY_MODES, limits={"IMPORT_MAX_TASKS": 3}, setting="IMPORT_MAX_TASKS"),
    Case("file-over-the-task-limit", "file", tasks_json(4), "the file holds 4 tasks, over the limit of 3 tasks",
         b"many.json", limits={"IMPORT_MAX_TASKS": 3}, setting="IMPORT_MAX_TASKS"),
    Case("pdf-over-the-page-limit", "file", pdf_bytes(3), "the file holds 3 pages, over the limit of 2 pages",
         b"long.pdf", limits={"IMPORT_MAX_PDF_PAGES": 2}, setting="IMPORT_MAX_PDF_PAGES"),
]


def multipart(*files):
    """Encode ``(name bytes, content bytes)`` pairs as multipart/form-data, names byte for byte."""
    boundary, parts = b"racelabboundary", []
    for name, content in files:
        filename = b"filename" + name if name.startswith(b"*=") else b'filename="' + name + b'"'
        parts.append(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; ' + filename
                     + b"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + b"\r\n")
    return b"".join(parts) + b"--" + boundary + b"--\r\n", "multipart/form-data; boundary=racelabboundary"


def send(api, project, case, mode):
    url = f"/api/projects/{project.id}/import?async={mode}"
    if case.sent_as == "body":
        return api.generic("POST", url, case.content, "application/json")
    files = [(case.name, case.content)] * (4 if case.sent_as == "files" else 1)  # "files": four of it, alone
    if case.sent_as == "file":
        files.insert(0, (b"good.csv", b"text\nkept out\n"))
    return api.generic("POST", url, *multipart(*files))


def stored_files():
    root = settings.MEDIA_ROOT
    return sorted(os.path.join(path, name) for path, _, names in os.walk(root) for name in names)


def state():
    return FileUpload.objects.count(), ProjectImport.objects.count(), Task.objects.count(), stored_files()


@pytest.mark.parametrize("case, mode", [(case, mode) for case in CASES for mode in case.modes],
                         ids=[f"{case.id}-async={mode}" for case in CASES for mode in case.modes])
def test_hostile_input_is_a_400_naming_it_and_the_problem_and_leaves_nothing(api, project, settings, case, mode):
    for name, value in case.limits.items():
        setattr(settings, name, value)
    before = state()

    response = send(api, project, case, mode)

    text = response.content.decode("utf-8", "replace")
    assert response.status_code == 400, text
    detail = response.json()["detail"]
    shown = "the request body" if case.sent_as == "body" else f"'{case.shown or case.name.decode()}'"
    assert (case.shown if case.shown.startswith("the request") else shown) in detail, detail
    assert case.problem in detail, detail
    assert f"the {case.setting} setting" in detail if case.setting else True, detail
    assert not [word for word in SQL_OR_TRACE if word in text], text
    assert state() == before


@pytest.mark.parametrize("shift", range(-8, 130, 6))
def test_a_name_that_is_not_utf8_is_found_where_the_request_is_read_in_two_chunks(api, project, shift):
    """Django reads the body 64 KiB at a time: put the second part's headers across that boundary."""
    prefix = multipart((b"good.csv", b""))[0].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    content = b"text\n" + b"x" * (65536 - shift - len(prefix) - 2 - 5)
    body, content_type = multipart((b"good.csv", content), (b"\xff\xfe.json", b'[{"a": 1}]'))
    assert body.index(b"--racelabboundary", 1) == 65536 - shift
    before = state()

    response = api.generic("POST", f"/api/projects/{project.id}/import", body, content_type)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["detail"].startswith("'\\xff\\xfe.json': the file name is not UTF-8 text.")
    assert state() == before


def test_a_deep_body_and_a_deep_file_get_the_same_problem(api, project):
    deep = b"[" * 100_000 + b"]" * 100_000
    body = api.generic("POST", f"/api/projects/{project.id}/import", deep, "application/json").json()
    upload = api.generic("POST", f"/api/projects/{project.id}/import", *multipart((b"deep.json", deep))).json()

    assert body["detail"].replace("the request body", "'deep.json'") == upload["detail"]


@pytest.mark.parametrize("sent_as", ["file", "body"])
def test_64_levels_are_accepted_in_a_file_and_a_body(api, project, sent_as):
    case = Case("64-deep", sent_as, nested(64).encode(), "", b"deep64.json")
    response = send(api, project, case, "false")

    assert response.status_code == 201, response.content
    assert Task.objects.filter(project=project).count() == (2 if sent_as == "file" else 1)


def test_a_surrogate_pair_is_text_not_a_lone_surrogate(api, project):
    response = api.generic("POST", f"/api/projects/{project.id}/import", b'[{"text": "smile \\ud83d\\ude00"}]',
                           "application/json")

    assert response.status_code == 201, response.content
    assert Task.objects.get(project=project).data == {"text": "smile \U0001F600"}


CJK_NAME = "\u6f22" * 190 + ".json"  # 195 characters, 575 bytes of UTF-8: over the 255-byte limit of a file name


@pytest.mark.parametrize("mode", ["false", "true"])
def test_a_190_character_cjk_file_name_imports_and_keeps_its_name(api, project, mode):
    response = api.generic("POST", f"/api/projects/{project.id}/import?async={mode}",
                           *multipart((CJK_NAME.encode(), b'[{"text": "kanji"}]')))

    assert response.status_code == 201, response.content
    upload = FileUpload.objects.get(project=project)
    assert upload.file_name == CJK_NAME
    stored = os.path.basename(upload.file.name)
    assert len(stored.encode()) <= 255 and stored.endswith(".json") and stored[9:12] == CJK_NAME[:3]
    assert upload.file.open("rb").read() == b'[{"text": "kanji"}]'
    listed = api.get(f"/api/projects/{project.id}/file-uploads").json()
    assert [row["file_name"] for row in listed] == [CJK_NAME]


def test_a_pdf_with_a_190_character_cjk_name_stores_its_pages(api, project):
    name = "\u6f22" * 190 + ".pdf"
    response = api.generic("POST", f"/api/projects/{project.id}/import", *multipart((name.encode(), pdf_bytes(2))))

    assert response.status_code == 201, response.content
    assert response.json()["task_count"] == 2
    assert all(len(os.path.basename(fu.file.name).encode()) <= 255 for fu in FileUpload.objects.all())


ASYNC_CONTENT = [case for case in CASES if case.sent_as == "file" and "false" in case.modes and "true" not in case.modes]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ASYNC_CONTENT, ids=[case.id for case in ASYNC_CONTENT])
def test_async_content_errors_fail_the_file_with_the_message_not_sql_and_delete_it(api, project, settings, case):
    """Async, content is only read by the job (upstream's 201, then a failed import): its error is the 400's message.

    The failed file upload and import rows stay, so the user can read why; the stored file is deleted.
    """
    for name, value in case.limits.items():
        setattr(settings, name, value)
    response = api.generic("POST", f"/api/projects/{project.id}/import?async=true", *multipart((case.name, case.content)))

    assert response.status_code == 201, response.content
    polled = api.get(response.json()["poll_url"]).json()
    [upload] = api.get(f"/api/projects/{project.id}/file-uploads").json()
    assert (polled["status"], upload["status"], polled["task_count"], polled["failed_files"]) == ("failed", "failed", 0, 1)
    for message in (polled["error"], upload["error_message"], polled["files"][0]["error_message"]):
        assert f"'{case.name.decode()}'" in message and case.problem in message, message
        assert not [word for word in SQL_OR_TRACE if word in message], message
    assert f"the {case.setting} setting" in polled["error"] if case.setting else True, polled["error"]
    assert (FileUpload.objects.count(), ProjectImport.objects.count(), Task.objects.count()) == (1, 1, 0)
    assert (upload["file"], stored_files()) == (None, [])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ASYNC_CONTENT[:3] + ASYNC_CONTENT[-2:], ids=[case.id for case in ASYNC_CONTENT[:3] + ASYNC_CONTENT[-2:]])
def test_async_a_bad_file_next_to_good_ones_fails_alone_and_the_import_says_so(api, project, settings, case):
    """The good files import (each file commits alone), the bad one fails; the import is failed and says both."""
    for name, value in case.limits.items():
        setattr(settings, name, value)
    good = [(b"good1.csv", b"text\na\nb\n"), (b"good2.txt", b"line\n")]
    response = api.generic("POST", f"/api/projects/{project.id}/import?async=true",
                           *multipart(*good, (case.name, case.content)))

    assert response.status_code == 201, response.content
    polled = api.get(response.json()["poll_url"]).json()
    assert (polled["status"], polled["task_count"], polled["failed_files"]) == ("failed", 3, 1)
    assert polled["error"].startswith(f"1 of 3 files failed; the other 2 were imported (3 tasks). Upload only the "
                                      f"failed files again:\n'{case.name.decode()}': "), polled["error"]
    assert [(entry["file_name"], entry["status"]) for entry in polled["files"]] == [
        ("good1.csv", "completed"), ("good2.txt", "completed"), (case.name.decode(), "failed")]
    assert (FileUpload.objects.count(), ProjectImport.objects.count(), Task.objects.count()) == (3, 1, 3)
    assert sorted(path.rsplit("-", 1)[-1] for path in stored_files()) == ["good1.csv", "good2.txt"]
