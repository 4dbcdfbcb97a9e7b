"""A multipart parser that refuses hostile file names instead of silently renaming or dropping them.

Django strips path parts and control characters from uploaded file names,
so ``../../etc/x.json`` would be imported as ``x.json`` without a word, and it
drops a part whose headers are not UTF-8, so a file named in raw bytes would
vanish from the import. The import API answers such an upload with a 400 that
names the file and the problem; this parser checks the name as the client sent it.

A whole request holds at most ``IMPORT_MAX_REQUEST_BYTES``: the view keeps every
file in memory until its rows are written (six 45 MB files took a gunicorn
worker's peak RSS from 77 to 343 MiB), and Django sets no total for file parts.
"""
import html

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser

from label_studio.data_import.parsers import REQUEST, BadImport, check_file_name, display_name, over_limit

MAX_PART_HEADER_BYTES = 1024  # as Django's parser: a part's headers longer than this are refused by it


class _NameCheckingParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name):
        name = html.unescape(file_name)
        check_file_name(name)
        return name


class ImportMultiPartParser(DRFMultiPartParser):
    """Parse multipart uploads like DRF; a bad file name or a part header that is not UTF-8 raises ParseError
    with the BadImport's 400 body (``detail``, ``file``, ``problem``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        boundary = parse_header_parameters(media_type or "")[1].get("boundary")
        capped = _CappedStream(stream, settings.IMPORT_MAX_REQUEST_BYTES)
        checked = _HeaderCheckingStream(capped, boundary.encode("ascii", "replace")) if boundary else capped
        try:
            declared = content_length(request)
            if declared is not None and declared > settings.IMPORT_MAX_REQUEST_BYTES:
                raise over_limit(REQUEST, declared, "bytes", "IMPORT_MAX_REQUEST_BYTES")
            data, files = _NameCheckingParser(meta, checked, request.upload_handlers, encoding).parse()
        except BadImport as exc:
            drain(stream)
            raise ParseError(exc.response_data())
        except MultiPartParserError as exc:
            raise ParseError(f"The upload is not valid multipart form data ({exc}). Send files as multipart/form-data.")
        return DataAndFiles(data, files)


class _CappedStream:
    """The request body, raising BadImport once more than ``limit`` bytes were read (a chunked or lying length)."""

    def __init__(self, stream, limit):
        self._stream, self._limit, self._read = stream, limit, 0

    def read(self, size=-1):
        chunk = self._stream.read(size)
        self._read += len(chunk)
        if self._read > self._limit:
            raise over_limit(REQUEST, self._read, "bytes", "IMPORT_MAX_REQUEST_BYTES", at_least=True)
        return chunk


class _HeaderCheckingStream:
    """The request body as Django's parser reads it, raising BadImport for a part whose headers are not UTF-8.

    A part's headers follow its ``--boundary`` delimiter; they are checked as
    they stream past, before Django parses them. Only the bytes of a delimiter
    whose headers go on in the next chunk are kept between reads.
    """

    def __init__(self, stream, boundary):
        self._stream, self._delimiter, self._pending = stream, b"--" + boundary, b""

    def read(self, size=-1):
        chunk = self._stream.read(size)
        window, start = self._pending + chunk, 0
        while (at := window.find(self._delimiter, start)) != -1:
            begin = at + len(self._delimiter)
            end = window.find(b"\r\n\r\n", begin, begin + MAX_PART_HEADER_BYTES)
            if end == -1 and chunk and len(window) - begin < MAX_PART_HEADER_BYTES:
                break  # the headers go on in the next chunk
            if end != -1 and not window.startswith(b"--", begin):  # "--boundary--" closes the body: no headers
                _check_headers(window[begin:end])
            start = begin
        self._pending = window[at:] if at != -1 else window[max(start, len(window) - len(self._delimiter) + 1):]
        return chunk


def _check_headers(headers):
    """Raise BadImport naming the file (or the header) when a part's ``headers`` bytes are not UTF-8."""
    for line in headers.split(b"\r\n"):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            shown = line.decode("utf-8", "backslashreplace")
            name = parse_header_parameters(shown)[1].get("filename")
            if name:
                raise BadImport(display_name(name), "the file name is not UTF-8 text.",
                                "Rename the file, or have the client send its name as UTF-8, and upload it again.")
            raise BadImport("the upload", f"the part header {display_name(shown)} is not UTF-8 text.",
                            "Send every part header as UTF-8.")


def content_length(request):
    """Return the request's declared ``Content-Length`` in bytes, or None when it has none (or not a number)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def drain(stream, chunk=64 * 1024):
    """Read what is left of the request body, keeping none of it, so the 400 reaches a client that is still sending.

    Django's request stream ends at the declared ``Content-Length``, so this ends too.
    """
    while stream.read(chunk):
        pass
