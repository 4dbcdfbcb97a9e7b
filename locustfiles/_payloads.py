"""Build the files and task lists that the load scenarios import.

Every builder returns a :class:`Batch`: what to send and how many tasks the
server must show for it afterwards. Nothing here talks to a server, and
nothing is written to disk: payloads live in memory for one request.
"""
import csv
import io
import json
import uuid
from dataclasses import dataclass, field

# One place for the formats the suite exercises; ``mixed`` walks all of them.
GOOD_FORMATS = ("json", "jsonl", "csv", "tsv", "txt", "pdf")
BAD_KINDS = ("unknown_extension", "unparsable_json", "empty_file", "hostile_name")


@dataclass
class Upload:
    """One file of a multipart import and the tasks it must yield."""

    name: str
    content: bytes
    content_type: str
    expected_tasks: int
    pages: int = 0  # > 0 for a PDF: one child file upload per page


@dataclass
class Batch:
    """One import request: files *or* a JSON task list, and what it must yield.

    ``bad`` marks input the server must refuse with a 400; ``expected_tasks`` is
    then 0 and nothing may be left behind.
    """

    label: str
    files: list = field(default_factory=list)
    tasks: list | None = None
    bad: bool = False

    @property
    def expected_tasks(self):
        if self.bad:
            return 0
        if self.tasks is not None:
            return len(self.tasks)
        return sum(upload.expected_tasks for upload in self.files)

    @property
    def pages(self):
        return sum(upload.pages for upload in self.files)

    def multipart(self):
        """Return the ``files=`` argument of a Locust client (all under the ``file`` field)."""
        return [("file", (u.name, u.content, u.content_type)) for u in self.files]


def _stem(kind):
    return f"racelab-{kind}-{uuid.uuid4().hex[:10]}"


def _texts(count, kind):
    return [f"{kind} task {i} {uuid.uuid4().hex[:8]}" for i in range(count)]


def file_batch(kind, count):
    """Return a one-file batch of ``count`` tasks in format ``kind`` (see ``GOOD_FORMATS``)."""
    return Batch(label=f"{kind}{count}", files=[upload(kind, count)])


def upload(kind, count):
    """Return one file of ``count`` tasks (pages, for ``pdf``) in format ``kind``."""
    texts = _texts(count, kind)
    name = f"{_stem(kind)}.{kind}"
    if kind == "json":
        body = json.dumps([{"text": t, "n": i} for i, t in enumerate(texts)]).encode()
        return Upload(name, body, "application/json", count)
    if kind == "jsonl":
        body = "".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)).encode()
        return Upload(name, body, "application/jsonl", count)
    if kind in ("csv", "tsv"):
        out = io.StringIO()
        writer = csv.writer(out, delimiter="," if kind == "csv" else "\t", lineterminator="\n")
        writer.writerow(["text", "n"])
        writer.writerows([t, i] for i, t in enumerate(texts))
        mime = "text/csv" if kind == "csv" else "text/tab-separated-values"
        return Upload(name, out.getvalue().encode(), mime, count)
    if kind == "txt":
        return Upload(name, ("\n".join(texts) + "\n").encode(), "text/plain", count)
    if kind == "pdf":
        return Upload(name, pdf_document(texts), "application/pdf", count, pages=count)
    raise ValueError(f"unknown format {kind!r}: use one of {', '.join(GOOD_FORMATS)}")


def json_body_batch(count):
    """Return a batch posted as a JSON list of task dicts (no file)."""
    return Batch(label=f"body{count}", tasks=[{"data": {"text": t}} for t in _texts(count, "body")])


def bad_batch(kind):
    """Return a one-file batch that the server must refuse with a 400 (see ``BAD_KINDS``)."""
    stem = _stem("bad")
    files = {
        "unknown_extension": Upload(f"{stem}.exe", b"MZ\x90\x00not a task file", "application/octet-stream", 0),
        "unparsable_json": Upload(f"{stem}.json", b'[{"text": "cut short"', "application/json", 0),
        "empty_file": Upload(f"{stem}.csv", b"", "text/csv", 0),
        "hostile_name": Upload(f"../../{stem}.json", b'[{"text": "x"}]', "application/json", 0),
    }
    if kind not in files:
        raise ValueError(f"unknown bad-file kind {kind!r}: use one of {', '.join(BAD_KINDS)}")
    return Batch(label=f"bad:{kind}", files=[files[kind]], bad=True)


# Hand-written rather than reportlab: locustfiles depend on locust, the stdlib and pypdf only,
# and pypdf cannot draw text; this is the smallest valid PDF with one text line per page.
def pdf_document(page_texts):
    """Return the bytes of a PDF with one page per text, each page showing its text.

    The file is plain PDF 1.4 (Helvetica, uncompressed streams, a correct xref
    table), so any extractor finds each page's text. Nothing is cached.
    """
    def escape(text):
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    count = len(page_texts)
    # Object numbers: 1 catalog, 2 page tree, 3 font, then a (page, content) pair per page.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(page_texts):
        stream = f"BT /F1 14 Tf 72 720 Td ({escape(text)}) Tj ET".encode("latin-1", "replace")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
