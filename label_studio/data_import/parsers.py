"""Turn uploaded bytes into task dicts, or say precisely what is wrong with them.

Every failure is a :class:`BadImport` that names the file and the problem and
tells the user what to do; parsing never writes to the database. Files and
JSON request bodies go through the same checks (:func:`load_json`,
:func:`check_tasks`), so one limit holds for both.
"""
import codecs
import csv
import io
import json
import math
import os
import sys
import unicodedata
from functools import partial

from django.conf import settings

TABULAR = {".csv": ",", ".tsv": "\t"}
BODY = "the request body"  # how messages name a JSON body, as they name a file by its quoted name
REQUEST = "the request"  # how messages name a whole request, e.g. a multipart upload over its total limit
SUPPORTED_FORMATS = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".pdf")


class BadImport(Exception):
    """An upload that cannot be imported; ``str()`` is the message for the user."""

    def __init__(self, file_name, problem, hint=""):
        self.file_name, self.problem, self.hint = file_name, problem, hint
        super().__init__(f"{file_name}: {problem}" + (f" {hint}" if hint else ""))

    def response_data(self):
        """Return the body of the import API's 400: ``detail`` (the whole message), ``file`` and ``problem``."""
        return {"detail": str(self), "file": self.file_name, "problem": self.problem}


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
    if "\ufffd" in name:  # U+FFFD: what decoding left of bytes that were not UTF-8, e.g. filename*=UTF-8''%FF
        raise BadImport(shown, "the file name is not UTF-8 text (it holds U+FFFD, the replacement character).",
                        "Rename the file, or have the client send its name as UTF-8, and upload it again.")
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
        raise over_limit(display_name(name), size, "bytes", "IMPORT_MAX_FILE_BYTES")


def over_limit(shown, amount, unit, setting, at_least=False):
    """Return the BadImport of ``shown`` (a file, the body or the request) holding ``amount`` ``unit``, over ``setting``.

    Every limit of the import speaks in this one form, for files, bodies and
    async imports alike: what was counted, the limit, and the setting that sets
    it. ``at_least`` says ``amount`` is only what was read before refusing.
    """
    limit = getattr(settings, setting)
    subject = {BODY: "the body", REQUEST: "the upload"}.get(shown, "the file")
    verb = "is" if unit == "bytes" else "holds"
    counted = f"more than {limit}" if at_least else str(amount)
    advice = "Send it in smaller requests" if shown in (BODY, REQUEST) else "Split it into smaller files"
    return BadImport(shown, f"{subject} {verb} {counted} {unit}, over the limit of {limit} {unit}.",
                     f"{advice} (the limit is the {setting} setting).")


def parse_tasks(name, content):
    """Return the task dicts in ``content`` (bytes of a non-PDF file called ``name``)."""
    shown = display_name(name)
    extension = os.path.splitext(name)[1].lower()
    text = decode_text(shown, content)
    if extension == ".json":
        tasks = _json_tasks(shown, text)
    elif extension == ".jsonl":
        tasks = [load_json(shown, line, f"line {number}") for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    elif extension in TABULAR:
        tasks = _tabular_tasks(shown, text, TABULAR[extension])
    else:
        tasks = [{"text": line} for line in text.splitlines() if line.strip()]
    # A table's or a text file's keys and values are pieces of ``text``, which holds no lone surrogate
    # (decode_text is strict) and no infinite number: they need a look only when it holds a NUL.
    from_json = extension in (".json", ".jsonl")
    return check_tasks(shown, tasks, check_values=from_json or "\x00" in text)


def decode_text(shown, content):
    """Return ``content`` as text (UTF-8, a leading BOM dropped), or raise BadImport naming the first bad byte."""
    bom = len(codecs.BOM_UTF8) if content.startswith(codecs.BOM_UTF8) else 0
    try:
        return content[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        start = bom + exc.start
    try:  # the three bytes of a UTF-16 surrogate, as CESU-8 and WTF-8 write them: not UTF-8
        surrogate = content[start:start + 3].decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise BadImport(shown, f"the content is not UTF-8 text (byte {start}).", "Save it as UTF-8 and upload it again.")
    raise BadImport(shown, f"the content contains a lone surrogate {_escaped(surrogate)} (byte {start}), which is not text.",
                    "Save it as UTF-8 and upload it again.")


def check_tasks(shown, tasks, check_values=True):
    """Return ``tasks`` normalised to ``{"data": …}`` dicts, or raise BadImport.

    Besides the shape, every key and value must be storable as JSON in any
    database: no NUL character, no lone surrogate, no infinite number. Only a
    caller that knows none can be there passes ``check_values=False``.
    """
    if not tasks:
        raise BadImport(shown, f"{'the body' if shown == BODY else 'the file'} holds no tasks.",
                        "Send at least one task.")
    if len(tasks) > settings.IMPORT_MAX_TASKS:
        raise over_limit(shown, len(tasks), "tasks", "IMPORT_MAX_TASKS")
    normalised = []
    for number, task in enumerate(tasks, 1):
        if not isinstance(task, dict) or not task:
            raise BadImport(shown, f"task {number} is not a non-empty JSON object.", "Each task must be an object of fields.")
        if "data" in task and not isinstance(task["data"], dict):
            raise BadImport(shown, f"task {number} has a 'data' that is not an object.", "Make 'data' an object of fields.")
        if check_values:
            _check_values(shown, number, task)
        normalised.append(task if "data" in task else {"data": task})
    return normalised


def _check_values(shown, number, task):
    """Raise BadImport for a key or value of ``task`` that no JSON column can store, iteratively."""
    stack = [task]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise BadImport(shown, f"task {number} contains a NUL character (\\u0000), which cannot be stored.",
                                "Remove the NUL characters and upload it again.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadImport(shown, f"task {number} contains a lone surrogate {_escaped(item[exc.start])}, which is "
                                "not text.", "Write the character itself, or a \\ud83d\\ude00-style pair, and upload it again.")
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadImport(shown, f"task {number} holds a number out of range (JSON numbers stop near 1.8e308).",
                            "Send such a number as a string.")


def _escaped(char):
    return char.encode("unicode_escape").decode()


def load_json(shown, text, where="the top level"):
    """Return the JSON value in ``text`` (from a file or a request body), or raise BadImport.

    Refused beyond invalid JSON: ``NaN`` and ``±Infinity`` (Python reads them,
    JSON has no such values), integers of more digits than Python converts
    (``sys.get_int_max_str_digits()``), and nesting deeper than the
    ``IMPORT_MAX_JSON_DEPTH`` setting, for a file and a body alike.
    """
    try:
        value = json.loads(text, parse_constant=partial(_constant, shown), parse_int=partial(_integer, shown))
    except RecursionError:
        value = None  # deeper than Python's recursion limit, so deeper than any sane depth limit
    except json.JSONDecodeError as exc:
        raise BadImport(shown, f"invalid JSON at {where}, line {exc.lineno} column {exc.colno}: {exc.msg}.",
                        "Fix the JSON and upload it again.")
    else:
        if _depth(value) <= settings.IMPORT_MAX_JSON_DEPTH:
            return value
    raise BadImport(shown, f"JSON nested deeper than {settings.IMPORT_MAX_JSON_DEPTH} levels.",
                    "Flatten the data (the limit is the IMPORT_MAX_JSON_DEPTH setting).")


def _constant(shown, name):
    raise BadImport(shown, f"{name} is not valid JSON.", "Write null or a string instead, and upload it again.")


def _integer(shown, digits):
    limit = sys.get_int_max_str_digits()
    count = len(digits.lstrip("-"))
    if limit and count > limit:
        raise BadImport(shown, f"an integer of {count} digits is too large (the limit is {limit} digits).",
                        "Send such a number as a string.")
    return int(digits)


def _json_tasks(shown, text):
    value = load_json(shown, text)
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
    """Return a table's rows as dicts of its header's columns; blank lines are skipped.

    ``csv.reader`` and ``zip``, not ``DictReader``: the same rows in half the time, and a row of another
    width than the header is refused either way.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, [])
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise BadImport(shown, f"unparsable table: {exc}.", "Fix the file and upload it again.")
    if not header or any(not field for field in header):
        raise BadImport(shown, "the header row is missing or has an empty column name.", "Add a header row naming every column.")
    for number, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise BadImport(shown, f"row {number} does not have {len(header)} columns like the header.",
                            "Fix the row and upload it again.")
    return [dict(zip(header, row)) for row in rows]


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
        raise over_limit(shown, count, "pages", "IMPORT_MAX_PDF_PAGES")
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
