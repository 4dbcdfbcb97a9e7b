"""The base load user against a stub target on loopback: what it records for each fault.

Each test drives real Locust users in a child interpreter (see ``drive_user.py``).
"""
import pytest
from drive_user import drive


def shown(out):
    """The time-to-display events under the gate's name (each also comes tagged with its mode)."""
    return [name for name in out["displays"] if not name.endswith(("[sync]", "[async]"))]


@pytest.mark.parametrize("ratio", ["0", "1"])
def test_correct_target_records_display_and_no_anomaly(ratio):
    out = drive({"env": {"RACELAB_ASYNC_RATIO": ratio}, "steps": [["file", "csv", 7], ["body", 3]]})
    assert out["results"] == [True, True]
    assert out["anomalies"] == [] and out["http_failures"] == []
    mode = "async" if ratio == "1" else "sync"
    assert out["displays"] == ["time_to_display", f"time_to_display [{mode}]"] * 2
    assert out["auth_headers"] == ["Token testtoken"]
    counters = out["counters"]
    assert counters["checks"] == 2 and counters.get("count_mismatches", 0) == 0
    assert counters["imports_async" if ratio == "1" else "imports_sync"] == 2
    assert counters.get("jobs_completed", 0) == (2 if ratio == "1" else 0)
    assert out["statuses"] == {"completed": 2}


def test_an_import_answered_final_is_not_polled_and_still_checked():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1"}, "state": {"waits": True}, "steps": [["file", "csv", 7]]})
    assert out["results"] == [True] and out["anomalies"] == [] and out["http_failures"] == []
    assert out["counters"]["imports_async"] == 1 and out["counters"]["jobs_completed"] == 1
    assert not [path for path in out["reads"] if "/imports/" in path], out["reads"]  # the 201 said it all
    assert any(path.endswith("/file-uploads") for path in out["reads"])  # what shows is still read


def test_wrong_task_count_is_recorded_under_its_name():
    out = drive({"state": {"count_offset": 1}, "steps": [["file", "json", 5]]})
    assert [name for name, _ in out["anomalies"]] == ["task_count_mismatch", "never_displayed"]
    assert "show 6 tasks, sent 5" in out["anomalies"][0][1]
    assert out["displays"] == [] and out["results"] == [False]
    assert out["counters"]["count_mismatches"] == 1


def test_zero_tasks_after_done_is_its_own_anomaly():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1"}, "state": {"zero_after_done": True},
                 "steps": [["file", "txt", 4]]})
    assert out["anomalies"][0][0] == "zero_tasks_after_done"


def test_processing_after_done_is_recorded_then_display_is_timed():
    out = drive({"state": {"processing_reads": 1}, "steps": [["file", "tsv", 3]]})
    assert [name for name, _ in out["anomalies"]] == ["status_not_final"]
    assert shown(out) == ["time_to_display"]


def test_missing_task_count_key_degrades_with_one_notice():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1"}, "state": {"upstream": True},
                 "steps": [["file", "json", 2], ["file", "csv", 3]]})
    notice = "no per-file task_count"
    assert sum(notice in n for n in out["notices"]) == 1
    assert out["stderr"].count(notice) == 1
    assert any("no poll_url" in n for n in out["notices"])
    assert out["anomalies"] == [] and shown(out) == ["time_to_display"] * 2
    assert out["statuses"] == {"unreported": 2}


def test_upstream_target_still_catches_a_wrong_project_total():
    out = drive({"state": {"upstream": True}, "project_task_number": 100, "steps": [["file", "json", 2]]})
    assert out["anomalies"][0][0] == "project_count_mismatch"
    assert "project shows 102 tasks, expected 2" in out["anomalies"][0][1]


def test_bad_files_refused_with_400_are_successes():
    kinds = ["unknown_extension", "unparsable_json", "empty_file", "hostile_name"]
    out = drive({"steps": [["bad", kind] for kind in kinds] + [["file", "json", 2]]})
    assert out["anomalies"] == [] and out["http_failures"] == []
    assert out["results"] == [False] * 4 + [True]
    assert out["counters"]["bad_files"] == 4


def test_bad_file_accepted_is_an_anomaly_and_does_not_cascade():
    out = drive({"state": {"accept_bad_files": True}, "steps": [["bad", "unknown_extension"], ["file", "json", 2]]})
    assert [name for name, _ in out["anomalies"]] == ["bad_file_accepted"]
    assert out["results"] == [False, True]


def test_async_import_that_never_finishes_is_stuck_within_the_deadline():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1"}, "state": {"async_never_completes": True},
                 "steps": [["file", "json", 2]]})
    assert [name for name, _ in out["anomalies"]] == ["stuck_import"]
    assert out["counters"]["jobs_stuck"] == 1 and out["results"] == [False]


def test_a_stuck_import_writing_later_is_not_counted_twice():
    out = drive({"user": "mixed.MixedUser", "env": {"RACELAB_ASYNC_RATIO": "1"},
                 "state": {"async_never_completes": True},
                 "steps": [["file", "json", 2], ["stub", "async_never_completes", False], ["file", "csv", 3]]})
    assert [name for name, _ in out["anomalies"]] == ["stuck_import"]
    assert out["results"] == [False, True] and out["project_totals"] == [5]


def test_lost_tasks_are_caught_by_the_project_total():
    out = drive({"user": "mixed.MixedUser", "steps": [["file", "json", 2], ["file", "csv", 3]],
                 "project_task_number": -1})
    assert out["anomalies"][0] == ["project_count_mismatch", "json2: project shows 1 tasks, expected 2"]


@pytest.mark.parametrize("late_status, anomalies", [("completed", ["completed_before_tasks"] * 2), ("processing", [])])
def test_a_second_reader_catches_completed_before_tasks(late_status, anomalies):
    out = drive({"env": {"RACELAB_WATCH_RATIO": "1"}, "state": {"sync_delay": 0.3, "late_status": late_status},
                 "steps": [["file", "csv", 4], ["file", "json", 2]]})
    assert [name for name, _ in out["anomalies"]] == anomalies
    assert out["results"] == [True, True]  # after the response, everything shows right
    if anomalies:
        assert "completed with 0 of 4 tasks while the import ran" in out["anomalies"][0][1]


def test_pdf_user_checks_the_pdf_and_times_it_apart():
    out = drive({"user": "pdf.PdfUser", "env": {"RACELAB_ASYNC_RATIO": "1"},
                 "steps": [["task", "fifty_page_pdf"]]})
    assert out["anomalies"] == []
    assert out["displays"] == ["time_to_display:pdf50"] and out["project_totals"] == [50]


def test_rapid_users_share_one_project():
    out = drive({"user": "rapid.RapidUser", "users": 2,
                 "steps": [["task", "json_body", 0], ["task", "small_file", 1], ["task", "json_body", 0]]})
    assert out["shared_ledger"] and len(out["project_totals"]) == 1
    assert out["anomalies"] == [] and shown(out) == ["time_to_display"] * 3


def test_mixed_and_batch_tasks_run_clean_on_a_correct_target():
    out = drive({"user": "mixed.MixedUser", "steps": [["task", "one_file"], ["task", "several_files"],
                                                       ["task", "json_body"], ["task", "bad_file"]]})
    assert out["anomalies"] == [] and out["http_failures"] == []
    out = drive({"user": "batch.BatchUser", "steps": [["task", "csv_file"]]})
    assert out["displays"] == ["time_to_display:batch1000"] and out["project_totals"] == [1000]


def test_batch_size_sets_the_batch_scenario_s_imports_and_their_metric():
    out = drive({"user": "batch.BatchUser", "env": {"RACELAB_BATCH_SIZE": "20"},
                 "steps": [["task", "json_file"], ["task", "json_body"]]})
    assert out["displays"] == ["time_to_display:batch20"] * 2 and out["project_totals"] == [40]
    assert out["anomalies"] == [] and out["http_failures"] == []


def test_missing_token_says_where_to_set_it():
    out = drive({"unset": ["RACELAB_TOKEN"]})
    assert "RACELAB_TOKEN" in out["start_error"] and "--racelab-token" in out["start_error"]


def test_polls_revalidate_with_the_last_etag_and_take_304_as_unchanged():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1", "RACELAB_IMPORT_DEADLINE": "5", "RACELAB_WATCH_RATIO": "0"},
                 "state": {"etags": True, "in_progress_polls": 3, "processing_reads": 2},
                 "steps": [["file", "csv", 4]]})
    assert out["results"] == [True] and out["http_failures"] == []
    assert [name for name, _ in out["anomalies"]] == ["status_not_final"]  # the stub's processing_reads
    polls = [status for path, status in out["revalidations"] if "/imports/" in path]
    assert polls == [304, 304, 200]  # in_progress twice unchanged, then completed
    assert [status for path, status in out["revalidations"] if path.endswith("/file-uploads")] == [304, 200]
    assert out["counters"]["not_modified"] == 3 and out["counters"]["jobs_completed"] == 1


def test_a_target_without_etags_gets_plain_polls():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1", "RACELAB_IMPORT_DEADLINE": "5"},
                 "state": {"upstream": True, "in_progress_polls": 3}, "steps": [["file", "csv", 4]]})
    assert out["results"] == [True] and out["anomalies"] == []
    assert out["revalidations"] == [] and "not_modified" not in out["counters"]


def test_a_304_that_hides_a_change_is_caught_as_a_stuck_import():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1", "RACELAB_IMPORT_DEADLINE": "1"},
                 "state": {"etags": True, "stale_etags": True, "in_progress_polls": 1},
                 "steps": [["file", "csv", 4]]})
    assert [name for name, _ in out["anomalies"]] == ["stuck_import"]


def test_a_poll_whose_connection_dropped_or_that_got_a_503_is_sent_again_and_not_a_failure():
    # geventhttpclient re-sends a GET on a dropped connection up to its pool size + 1 (11) times itself
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1", "RACELAB_IMPORT_DEADLINE": "5", "RACELAB_WATCH_RATIO": "0"},
                 "state": {"reset_polls": 12, "unavailable_polls": 2}, "steps": [["file", "csv", 4]]})
    assert out["results"] == [True] and out["anomalies"] == []
    assert out["http_failures"] == [] and out["counters"]["read_retries"] == 3


def test_a_poll_that_never_gets_an_answer_is_a_failure_and_the_user_polls_on():
    out = drive({"env": {"RACELAB_ASYNC_RATIO": "1", "RACELAB_IMPORT_DEADLINE": "5", "RACELAB_WATCH_RATIO": "0"},
                 "state": {"unavailable_polls": 5}, "steps": [["file", "csv", 4]]})
    assert out["results"] == [True] and out["anomalies"] == []
    assert out["http_failures"] == ["/api/projects/[id]/imports/[id]: polling the import answered 503: "
                                    '{"detail": "stub: Redis is down"}']
