"""The import API's JSON body parser: a body gets the checks and limits of a ``.json`` file.

DRF's own parser recurses without a limit of its own (100k levels raise
``RecursionError``, a 500), accepts 900 levels where files stop at 64, reads a
body of any size into memory, and words its errors for developers. This one
reads at most ``IMPORT_MAX_FILE_BYTES`` + 1 bytes and parses with :func:`load_json`.
"""
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from label_studio.data_import.multipart import content_length, drain
from label_studio.data_import.parsers import BODY, BadImport, decode_text, load_json, over_limit

class ImportJSONParser(JSONParser):
    """Parse a JSON body (UTF-8, as RFC 8259 requires) or raise ParseError with the BadImport's 400 body.

    A body over ``IMPORT_MAX_FILE_BYTES`` is refused by its ``Content-Length``
    before a byte is read, or, when the length lies, once one byte more than the
    limit has been read; either way the rest is drained unkept, so the client
    still reads the 400.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.IMPORT_MAX_FILE_BYTES
        declared = content_length(parser_context["request"]) if parser_context else None
        try:
            if declared is not None and declared > limit:
                raise over_limit(BODY, declared, "bytes", "IMPORT_MAX_FILE_BYTES")
            content = read_at_most(stream, limit + 1)
            if len(content) > limit:
                raise over_limit(BODY, len(content), "bytes", "IMPORT_MAX_FILE_BYTES", at_least=True)
            return load_json(BODY, decode_text(BODY, content))
        except BadImport as exc:
            drain(stream)
            raise ParseError(exc.response_data())


def read_at_most(stream, size):
    """Return up to ``size`` bytes of ``stream``: a socket's ``read(n)`` may return fewer than ``n`` before the end."""
    chunks, total = [], 0
    while total < size and (chunk := stream.read(size - total)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
