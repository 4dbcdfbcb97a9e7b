"""Properties of the parsers, with Hypothesis: any bytes under any name, any JSON value, give tasks or a BadImport.

Never another exception (a 500 in a request, a crashed job in a worker), and
what is accepted can be stored: strict JSON, text that is UTF-8 without NUL.
Each test is derandomized with no example database, so a run in CI tries the
same examples every time; ``PROPERTY`` bounds how many.
"""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rest_framework.exceptions import ParseError

from label_studio.data_import.json_body import ImportJSONParser
from label_studio.data_import.parsers import BODY, SUPPORTED_FORMATS, BadImport, check_tasks, load_json
from label_studio.data_import.services import Upload, parse_uploads
from tests.conftest import pdf_bytes

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Valid files of every format, to mutate: random bytes alone rarely get past the first check.
SEEDS = [b'[{"text": "a", "n": 1.5e3, "l": [true, null]}]', b"text,n\na,1\nb,2\n", b"one\ntwo\n", b"a\tb\n1\t2\n",
         b'{"data": {"text": "\\u00e9\\ud83d\\ude00"}}\n{"x": 1}\n', b"\xef\xbb\xbftext\n\xc3\xa9\n", pdf_bytes(1)]
NOISE = [b"\x00", b"\\u0000", b"\\ud800", b"NaN", b"-Infinity", b"1e999", b"9" * 5000, b"[" * 2000, b"{", b'"', b",",
         b"\r", b"\n", b"\xff", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\t", b"\\", b"\x85", b"\xe2\x80\xa8", b"/Type", b"obj"]


@st.composite
def mutated(draw):
    content = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(content)))
        content[at:at + draw(st.integers(0, 3))] = draw(st.sampled_from(NOISE) | st.binary(min_size=1, max_size=8))
    return bytes(content)


EXTENSIONS = st.sampled_from(SUPPORTED_FORMATS + (".JSON", ".Csv", "", ".exe", ".json.txt"))
NAMES = st.tuples(st.text(max_size=40), EXTENSIONS).map("".join) | st.text(max_size=260)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
# Any JSON document, some nested around the depth limit or far past any recursion limit (Hypothesis raises
# Python's own while it runs), which a few hundred small examples never reach.
JSON_TEXTS = st.builds(lambda depth, value: "[" * depth + json.dumps(value) + "]" * depth,
                       st.integers(0, 3) | st.sampled_from([61, 62, 63, 100_000]), JSON_VALUES)
CONTENTS = st.binary(max_size=300) | mutated() | JSON_TEXTS.map(str.encode)


def assert_storable(tasks):
    json.dumps(tasks, allow_nan=False)
    texts = strings(tasks)
    assert not [text for text in texts if "\x00" in text or not utf8(text)], texts


@PROPERTY
@given(name=NAMES, content=CONTENTS)
def test_any_bytes_under_any_name_give_tasks_or_a_bad_import(name, content):
    assert_tasks_or_bad_import(name, content)


@PROPERTY
@given(extension=st.sampled_from(SUPPORTED_FORMATS), content=CONTENTS)
def test_any_bytes_in_every_format_give_tasks_or_a_bad_import(extension, content):
    """As above under a valid name, so every example reaches its format's parser."""
    assert_tasks_or_bad_import(f"x{extension}", content)


def assert_tasks_or_bad_import(name, content):
    try:
        parsed = parse_uploads([Upload(name=name, content=content)])
    except BadImport as exc:
        assert str(exc) and exc.file_name, exc
        return
    [(upload, tasks)] = parsed.tasks_by_upload
    if os.path.splitext(name)[1].lower() == ".pdf":
        reader, texts = tasks
        assert len(texts) == len(reader.pages) > 0
        assert_storable(texts)
    else:
        assert tasks and all(isinstance(task["data"], dict) for task in tasks)
        assert_storable(tasks)


@PROPERTY
@given(value=JSON_VALUES)
def test_any_json_value_as_tasks_gives_tasks_or_a_bad_import(value):
    try:
        tasks = check_tasks(BODY, value if isinstance(value, list) else [value])
    except BadImport as exc:
        assert exc.file_name == BODY, exc
        return
    assert_storable(tasks)


@PROPERTY
@given(text=JSON_TEXTS)
def test_any_json_value_as_a_body_gives_its_value_or_a_400_body(text):
    """``text`` holds NaN and Infinity as Python writes them, which JSON has not."""
    try:
        parsed = ImportJSONParser().parse(_Stream(text.encode()), "application/json", None)
    except ParseError as exc:
        assert set(exc.detail) == {"detail", "file", "problem"} and exc.detail["file"] == BODY, exc.detail
        return
    assert parsed == load_json(BODY, text)
    json.dumps(parsed, allow_nan=False)


class _Stream:
    def __init__(self, content):
        self.content = content

    def read(self, size=-1):
        size = len(self.content) if size is None or size < 0 else size
        chunk, self.content = self.content[:size], self.content[size:]
        return chunk


def strings(value):
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *strings(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return [value] if isinstance(value, str) else []


def utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("content", [b"\xff", b'[{"v": NaN}]', b"[" * 100_000], ids=["not-utf8", "nan", "deep"])
def test_the_examples_hypothesis_must_reach_are_bad_imports(content):
    """Known bad inputs, so a strategy that stops producing them cannot pass by finding nothing."""
    with pytest.raises(BadImport):
        parse_uploads([Upload(name="x.json", content=content)])
