"""The import API's JSON body parser: a body gets the checks and limits of a ``.json`` file.

DRF's own parser recurses without a limit of its own (100k levels raise
``RecursionError``, a 500), accepts 900 levels where files stop at 64, and
words its errors for developers. This one parses with :func:`load_json`.
"""
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from label_studio.data_import.parsers import BODY, BadImport, decode_text, load_json


class ImportJSONParser(JSONParser):
    """Parse a JSON body (UTF-8, as RFC 8259 requires) or raise ParseError with the BadImport's 400 body."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return load_json(BODY, decode_text(BODY, stream.read()))
        except BadImport as exc:
            raise ParseError(exc.response_data())
