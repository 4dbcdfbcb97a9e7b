"""A multipart parser that refuses hostile file names instead of silently renaming them.

Django strips path parts and control characters from uploaded file names,
so ``../../etc/x.json`` would be imported as ``x.json`` without a word. The
import API answers such an upload with a 400 that names the file and the
problem; this parser checks the name as the client sent it.
"""
import html

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser

from label_studio.data_import.parsers import BadImport, check_file_name


class _NameCheckingParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name):
        name = html.unescape(file_name)
        check_file_name(name)
        return name


class ImportMultiPartParser(DRFMultiPartParser):
    """Parse multipart uploads like DRF, raising ParseError with the BadImport message for a bad file name."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        try:
            data, files = _NameCheckingParser(meta, stream, request.upload_handlers, encoding).parse()
        except BadImport as exc:
            _drain(stream)
            raise ParseError(str(exc))
        except MultiPartParserError as exc:
            raise ParseError(f"The upload is not valid multipart form data ({exc}). Send files as multipart/form-data.")
        return DataAndFiles(data, files)


def _drain(stream, chunk=64 * 1024):
    """Read what is left of the request body, so the 400 reaches a client that is still sending."""
    while stream.read(chunk):
        pass
