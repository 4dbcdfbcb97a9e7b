"""Turn uploaded bytes into task dicts, or say precisely what is wrong with them.

Every failure is a :class:`BadImport` that names the file and the problem and
tells the user what to do; parsing never writes to the database.
"""
import csv
import io
import json
import os
import unicodedata

from django.conf import settings

TABULAR = {".csv": ",", ".tsv": "\t"}
SUPPORTED_FORMATS = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".pdf")


class BadImport(Exception):
    """An upload that cannot be imported; ``str()`` is the message for the user."""

    def __init__(self, file_name, problem, hint=""):
        self.file_name, self.problem, self.hint = file_name, problem, hint
        super().__init__(f"{file_name}: {problem}" + (f" {hint}" if hint else ""))


def display_name(name):
    """Return ``name`` safe to show: control characters escaped, length capped."""
    shown = "".join(ch if unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode() for ch in name)
    return f"'{shown[:120]}'"


def check_file_name(name):
    """Return the file name itself, or raise BadImport for a hostile or unsupported one."""
    shown = display_name(name or "")
    if not name or not name.strip():
        raise BadImport("(unnamed file)", "the upload has no file name.", "Send the file with its name.")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise BadImport(shown, "the file name contains control characters.", "Rename the file and upload it again.")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise BadImport(shown, "the file name is a path, not a plain name.", "Upload the file under its plain name.")
    if len(name) > 200:
        raise BadImport(shown, "the file name is longer than 200 characters.", "Rename the file and upload it again.")
    extension = os.path.splitext(name)[1].lower()
    if extension not in SUPPORTED_FORMATS:
        raise BadImport(
            shown, f"the format {extension or '(no extension)'!r} is not supported.",
            f"Supported formats: {', '.join(SUPPORTED_FORMATS)}.",
        )
    return name


def check_size(name, size):
    """Raise BadImport when ``size`` bytes is empty or over ``IMPORT_MAX_FILE_BYTES``."""
    if size == 0:
        raise BadImport(display_name(name), "the file is empty.", "Upload a file with at least one task.")
    if size > settings.IMPORT_MAX_FILE_BYTES:
        raise BadImport(
            display_name(name), f"the file is {size} bytes, over the limit of {settings.IMPORT_MAX_FILE_BYTES} bytes.",
            "Split it into smaller files (the limit is the IMPORT_MAX_FILE_BYTES setting).",
        )


def parse_tasks(name, content):
    """Return the task dicts in ``content`` (bytes of a non-PDF file called ``name``)."""
    shown = display_name(name)
    extension = os.path.splitext(name)[1].lower()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadImport(shown, f"the file is not UTF-8 text (byte {exc.start}).", "Save it as UTF-8 and upload it again.")
    if extension == ".json":
        tasks = _json_tasks(shown, text)
    elif extension == ".jsonl":
        tasks = [_json_value(shown, line, f"line {number}") for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    elif extension in TABULAR:
        tasks = _tabular_tasks(shown, text, TABULAR[extension])
    else:
        tasks = [{"text": line} for line in text.splitlines() if line.strip()]
    return check_tasks(shown, tasks)


def check_tasks(shown, tasks):
    """Return ``tasks`` normalised to ``{"data": …}`` dicts, or raise BadImport."""
    if not tasks:
        raise BadImport(shown, "the file holds no tasks.", "Upload a file with at least one task.")
    if len(tasks) > settings.IMPORT_MAX_TASKS:
        raise BadImport(
            shown, f"the file holds {len(tasks)} tasks, over the limit of {settings.IMPORT_MAX_TASKS}.",
            "Split it into smaller files (the limit is the IMPORT_MAX_TASKS setting).",
        )
    normalised = []
    for number, task in enumerate(tasks, 1):
        if not isinstance(task, dict) or not task:
            raise BadImport(shown, f"task {number} is not a non-empty JSON object.", "Each task must be an object of fields.")
        if "data" in task and not isinstance(task["data"], dict):
            raise BadImport(shown, f"task {number} has a 'data' that is not an object.", "Make 'data' an object of fields.")
        normalised.append(task if "data" in task else {"data": task})
    return normalised


def _json_value(shown, text, where):
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        depth = settings.IMPORT_MAX_JSON_DEPTH + 1
    except json.JSONDecodeError as exc:
        raise BadImport(shown, f"invalid JSON at {where}, line {exc.lineno} column {exc.colno}: {exc.msg}.",
                        "Fix the JSON and upload it again.")
    else:
        depth = _depth(value)
    if depth > settings.IMPORT_MAX_JSON_DEPTH:
        raise BadImport(shown, f"JSON nested deeper than {settings.IMPORT_MAX_JSON_DEPTH} levels.",
                        "Flatten the data (the limit is the IMPORT_MAX_JSON_DEPTH setting).")
    return value


def _json_tasks(shown, text):
    value = _json_value(shown, text, "the top level")
    return value if isinstance(value, list) else [value]


def _depth(value):
    """Return the nesting depth of a JSON value, iteratively (no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _tabular_tasks(shown, text, delimiter):
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        rows = list(reader)
    except csv.Error as exc:
        raise BadImport(shown, f"unparsable table: {exc}.", "Fix the file and upload it again.")
    if not reader.fieldnames or any(not field for field in reader.fieldnames):
        raise BadImport(shown, "the header row is missing or has an empty column name.", "Add a header row naming every column.")
    for number, row in enumerate(rows, 2):
        if None in row or None in row.values():
            raise BadImport(shown, f"row {number} does not have {len(reader.fieldnames)} columns like the header.",
                            "Fix the row and upload it again.")
    return rows


def pdf_pages(name, content):
    """Return a ``pypdf.PdfReader`` over ``content``, or raise BadImport for a broken or encrypted PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    shown = display_name(name)
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise BadImport(shown, "the PDF is encrypted.", "Remove the password and upload it again.")
        count = len(reader.pages)
    except BadImport:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise BadImport(shown, f"the PDF cannot be read ({type(exc).__name__}).", "Check the file opens in a PDF reader.")
    if count == 0:
        raise BadImport(shown, "the PDF has no pages.", "Upload a PDF with at least one page.")
    if count > settings.IMPORT_MAX_PDF_PAGES:
        raise BadImport(shown, f"the PDF has {count} pages, over the limit of {settings.IMPORT_MAX_PDF_PAGES}.",
                        "Split it (the limit is the IMPORT_MAX_PDF_PAGES setting).")
    return reader


def page_text(shown, page, number):
    """Return the text of one ``pypdf`` page, or raise BadImport naming the page."""
    try:
        return page.extract_text() or ""
    except Exception as exc:  # pypdf raises many types on damaged content streams
        raise BadImport(shown, f"page {number} cannot be read ({type(exc).__name__}).", "Check the file opens in a PDF reader.")


def single_page_pdf(page):
    """Return the bytes of a PDF holding only ``page``."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
