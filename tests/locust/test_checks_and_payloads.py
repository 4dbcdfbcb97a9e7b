"""The pure parts of the load suite: payload builders and the read-your-writes judges."""
import io
import json

import pypdf
import pytest

from racelab.locustfiles._checks import ANOMALIES, check_file_uploads, check_pages, check_project_total
from racelab.locustfiles._observations import Observations
from racelab.locustfiles._payloads import BAD_KINDS, GOOD_FORMATS, bad_batch, file_batch, json_body_batch, pdf_document, upload
from racelab.locustfiles._settings import MISSING_TOKEN, load_settings, require_token, think_time


def test_pdf_document_is_valid_with_one_text_page_per_task():
    data = pdf_document([f"page (text) {i}" for i in range(50)])
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 50
    assert reader.pages[49].extract_text() == "page (text) 49"


@pytest.mark.parametrize("kind", GOOD_FORMATS)
def test_every_format_counts_its_tasks(kind):
    batch = file_batch(kind, 12)
    assert batch.expected_tasks == 12 and batch.files[0].name.endswith("." + kind)
    assert batch.multipart()[0][0] == "file"


def test_bad_batches_expect_nothing_and_unknown_kinds_say_what_exists():
    assert all(bad_batch(kind).bad and bad_batch(kind).expected_tasks == 0 for kind in BAD_KINDS)
    with pytest.raises(ValueError, match="use one of"):
        bad_batch("huge")
    assert json_body_batch(3).expected_tasks == 3


def rows(*specs):
    return [{"id": i, "file_name": name, "task_count": count, "status": status, "parent": None}
            for i, name, count, status in specs]


def test_file_uploads_right_counts_pass_and_per_file_swaps_are_caught():
    a, b = upload("csv", 2), upload("json", 3)
    ok = check_file_uploads(rows((1, a.name, 2, "completed"), (2, b.name, 3, "completed")), [1, 2], [a, b], 5)
    assert ok.findings == [] and ok.statuses == ["completed", "completed"]
    swapped = check_file_uploads(rows((1, a.name, 3, "completed"), (2, b.name, 2, "completed")), [1, 2], [a, b], 5)
    assert [f.anomaly for f in swapped.findings] == ["task_count_mismatch"]


@pytest.mark.parametrize("count, status, anomaly", [
    (0, "completed", "zero_tasks_after_done"),
    (4, "completed", "task_count_mismatch"),
    (0, "processing", "status_not_final"),
    (0, "failed", "file_upload_failed"),
])
def test_file_upload_findings_are_named(count, status, anomaly):
    verdict = check_file_uploads(rows((1, "x.csv", count, status)), [1], [], 5)
    assert [f.anomaly for f in verdict.findings] == [anomaly]
    assert anomaly in ANOMALIES


def test_missing_rows_and_missing_keys():
    verdict = check_file_uploads([{"id": 1, "file": "upload/x.csv"}], [1, 2], [], 5)
    assert [f.anomaly for f in verdict.findings] == ["file_upload_missing"]
    assert not verdict.has_task_count and not verdict.has_status and verdict.statuses == [None]


def test_pdf_pages_fan_in():
    parent = {"id": 1, "task_count": 3, "status": "completed", "parent": None}
    pages = [{"id": 10 + i, "parent": 1, "task_count": 1, "status": "completed"} for i in range(3)]
    assert check_pages([parent, *pages], {1}, 3) == []
    pages[2]["status"] = "processing"
    assert [f.anomaly for f in check_pages([parent, *pages], {1}, 3)] == ["parent_completed_early"]
    assert [f.anomaly for f in check_pages([{**parent, "task_count": 2}, *pages[:2]], {1}, 3)] == [
        "page_count_mismatch"]
    assert check_pages([parent], {1}, 3) == []  # no pages listed: nothing to judge


@pytest.mark.parametrize("seen, shared, ok", [(5, False, True), (6, False, False), (6, True, True), (4, True, False)])
def test_project_total_exact_when_exclusive_at_least_when_shared(seen, shared, ok):
    assert (check_project_total(seen, 5, shared) is None) == ok


def test_project_total_allows_slack_for_imports_of_unknown_outcome_only_upwards():
    assert check_project_total(7, 5, False, slack=2) is None
    assert check_project_total(8, 5, False, slack=2).detail == "project shows 8 tasks, expected 5 to 7"
    assert check_project_total(4, 5, False, slack=2) is not None


def test_observations_ship_deltas_and_notice_once():
    worker, master = Observations(), Observations()
    assert worker.notice("say it once") and not worker.notice("say it once")
    worker.count("checks", 2)
    worker.status("completed")
    master.merge(worker.drain())
    worker.count("checks")
    master.merge(worker.drain())
    assert master.counters["checks"] == 3 and master.statuses["completed"] == 1
    assert master.notices == ["say it once"]
    assert json.dumps(worker.drain())  # plain JSON data


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RACELAB_TOKEN", "k")
    monkeypatch.setenv("RACELAB_ASYNC_RATIO", "0.25")
    settings = load_settings()
    assert (settings.token, settings.async_ratio, settings.import_deadline) == ("k", 0.25, 30.0)
    assert settings.watch_ratio == 0.2
    monkeypatch.setenv("RACELAB_ASYNC_RATIO", "2")
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_settings()
    monkeypatch.delenv("RACELAB_TOKEN")
    monkeypatch.delenv("RACELAB_ASYNC_RATIO")
    with pytest.raises(RuntimeError) as error:
        require_token(load_settings())
    assert str(error.value) == MISSING_TOKEN


@pytest.mark.parametrize("text, bounds", [("", None), ("3", (3.0, 3.0)), ("2-5", (2.0, 5.0)), (" 0-0.5 ", (0.0, 0.5))])
def test_think_time_reads_min_max_or_one_number(text, bounds):
    assert think_time(text) == bounds


@pytest.mark.parametrize("text, problem", [("fast", "is not seconds"), ("5-2", "MIN <= MAX"), ("-1", "is not seconds")])
def test_a_bad_think_time_says_how_to_write_it(text, problem):
    with pytest.raises(ValueError, match=problem):
        think_time(text)
