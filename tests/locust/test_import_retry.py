"""Imports under faults: one Idempotency-Key per import, retries bounded, the report kept honest.

Each test drives real Locust users in a child interpreter (see ``drive_user.py``)
against the stub target, whose ``import_faults`` make an import's first attempts
fail; the retry policy itself is tested in ``test_retry_policy.py``.
"""
import uuid

import pytest
from drive_user import drive

from racelab.locustfiles._retry import MAX_ATTEMPTS

SYNC, RETRY = "/api/projects/[id]/import [sync]", "/api/projects/[id]/import [retry]"
ROOMY = {"RACELAB_IMPORT_DEADLINE": "10", "RACELAB_WATCH_RATIO": "0"}  # drive()'s 0.3 s deadline has no room to retry


def keys_sent(out):
    return [key for key, _ in out["import_attempts"]]


@pytest.mark.parametrize("fault", ["reset", "502", "503", "504"])
def test_a_failed_attempt_is_sent_again_with_its_key_and_is_no_failure(fault):
    out = drive({"env": ROOMY, "state": {"import_faults": [fault]}, "steps": [["file", "csv", 7]]})
    assert out["results"] == [True]
    assert out["http_failures"] == [] and out["anomalies"] == []
    first, second = keys_sent(out)
    assert first == second and uuid.UUID(first).version == 4
    assert out["import_requests"] == [[RETRY, True], [SYNC, True]]  # the retry shows, as a success
    assert out["counters"]["import_retries"] == 1 and out["counters"][f"import_retries_after_{fault}"] == 1
    assert out["project_totals"] == [7]


def test_each_import_has_its_own_key():
    out = drive({"env": ROOMY, "state": {"import_faults": ["503"]}, "steps": [["file", "csv", 2], ["body", 3]]})
    assert out["results"] == [True, True]
    first, first_again, second, second_again = keys_sent(out)
    assert first == first_again and second == second_again and first != second
    assert out["counters"]["import_retries"] == 2


def test_retry_after_is_waited_before_the_next_attempt():
    out = drive({"env": {**ROOMY, "RACELAB_ASYNC_RATIO": "1"}, "state": {"import_faults": ["503"], "retry_after": "1"},
                 "steps": [["file", "csv", 3]]})
    assert out["results"] == [True] and out["http_failures"] == []
    (_, sent), (_, sent_again) = out["import_attempts"]
    assert sent_again - sent >= 0.9  # loosely: the wait itself is test_retry_after_is_honoured_up_to_its_cap's
    assert out["counters"]["import_retries_after_503"] == 1 and out["counters"]["jobs_completed"] == 1


@pytest.mark.parametrize("ratio", ["0", "1"])
def test_an_import_that_committed_before_its_connection_dropped_is_not_imported_twice(ratio):
    out = drive({"env": {**ROOMY, "RACELAB_ASYNC_RATIO": ratio}, "state": {"import_faults": ["reset_after_import"]},
                 "steps": [["file", "json", 4], ["file", "csv", 2]]})
    assert out["results"] == [True, True]
    assert out["anomalies"] == [] and out["http_failures"] == []
    assert out["project_totals"] == [6]  # the repeat got the first import back, not a second one


def test_exhausted_retries_record_the_failure_once():
    out = drive({"env": ROOMY, "state": {"import_faults": ["503"] * MAX_ATTEMPTS},
                 "steps": [["file", "csv", 2], ["stub", "import_faults", []], ["file", "json", 3]]})
    assert out["results"] == [False, True]
    assert len(out["import_attempts"]) == MAX_ATTEMPTS + 1
    assert out["import_requests"][:MAX_ATTEMPTS] == [[RETRY, True]] * (MAX_ATTEMPTS - 1) + [[SYNC, False]]
    assert len(out["http_failures"]) == 1 and "answered 503" in out["http_failures"][0]
    assert out["counters"]["import_retries"] == MAX_ATTEMPTS - 1 and out["counters"]["import_retries_exhausted"] == 1
    assert out["anomalies"] == []  # the failed import is allowed for, not counted again as a wrong total


def test_dropped_connections_every_time_record_the_failure():
    out = drive({"env": ROOMY, "state": {"import_faults": ["reset"] * MAX_ATTEMPTS}, "steps": [["file", "csv", 2]]})
    assert out["results"] == [False] and len(out["import_attempts"]) == MAX_ATTEMPTS
    assert len(out["http_failures"]) == 1 and "no answer" in out["http_failures"][0]


def test_the_import_deadline_bounds_the_retries():
    out = drive({"env": {"RACELAB_IMPORT_DEADLINE": "2"}, "state": {"import_faults": ["503"] * 2, "retry_after": "3"},
                 "steps": [["file", "csv", 2]]})
    assert out["results"] == [False] and len(out["import_attempts"]) == 1
    assert len(out["http_failures"]) == 1 and out["counters"]["import_retries_exhausted"] == 1


def test_an_upstream_target_gets_no_key_and_no_retry():
    out = drive({"env": ROOMY, "state": {"upstream": True, "import_faults": ["503"]},
                 "steps": [["file", "csv", 2], ["stub", "import_faults", []], ["file", "json", 3]]})
    assert keys_sent(out) == [None, None]  # one attempt each: the failed one was not sent again
    assert out["results"] == [False, True] and len(out["http_failures"]) == 1
    assert "import_retries" not in out["counters"]


def test_a_reused_key_is_an_anomaly_and_not_retried():
    out = drive({"env": ROOMY, "state": {"import_faults": ["422"]}, "steps": [["file", "csv", 2]]})
    assert out["results"] == [False] and len(out["import_attempts"]) == 1
    assert [name for name, _ in out["anomalies"]] == ["idempotency_key_reused"]
    assert "import_retries" not in out["counters"]
