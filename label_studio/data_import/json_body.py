"""The import API's parsers of a body that is not multipart: read at most ``IMPORT_MAX_FILE_BYTES``.

DRF's JSON parser recurses without a limit of its own (100k levels raise
``RecursionError``, a 500), accepts 900 levels where files stop at 64, and
words its errors for developers; it and DRF's form parser read a body of any
size into memory: DRF hands a ``JSONParser`` or ``FormParser`` (or a subclass)
``request.body``, read whole up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``. These are
plain parsers of the same media types, so they get the stream; they read one
byte more than the limit at most, and the JSON one parses with
:func:`load_json`, so a body gets the checks of a ``.json`` file.
"""
from django.conf import settings
from django.http import QueryDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from label_studio.data_import.multipart import content_length, drain
from label_studio.data_import.parsers import BODY, BadImport, decode_text, load_json, over_limit


class ImportJSONParser(BaseParser):
    """Parse a JSON body (UTF-8, as RFC 8259 requires) or raise ParseError with the BadImport's 400 body."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return load_json(BODY, decode_text(BODY, read_body(stream, parser_context)))
        except BadImport as exc:
            raise ParseError(exc.response_data())


class ImportFormParser(BaseParser):
    """Parse a form-encoded body like DRF's ``FormParser``, once :func:`read_body` has found it within the limit."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return QueryDict(read_body(stream, parser_context), encoding=encoding)
        except BadImport as exc:
            raise ParseError(exc.response_data())


def read_body(stream, parser_context):
    """Return the body's bytes, or raise BadImport when it holds more than ``IMPORT_MAX_FILE_BYTES``.

    A body over the limit is refused by its ``Content-Length`` before a byte is
    read, or, when the length lies, once one byte more than the limit has been
    read; either way the rest is drained unkept, so the client still reads the 400.
    """
    limit = settings.IMPORT_MAX_FILE_BYTES
    declared = content_length(parser_context["request"]) if parser_context else None
    if declared is not None and declared > limit:
        drain(stream)
        raise over_limit(BODY, declared, "bytes", "IMPORT_MAX_FILE_BYTES")
    content = read_at_most(stream, limit + 1)
    if len(content) > limit:
        drain(stream)
        raise over_limit(BODY, len(content), "bytes", "IMPORT_MAX_FILE_BYTES", at_least=True)
    return content


def read_at_most(stream, size):
    """Return up to ``size`` bytes of ``stream``: a socket's ``read(n)`` may return fewer than ``n`` before the end."""
    chunks, total = [], 0
    while total < size and (chunk := stream.read(size - total)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
