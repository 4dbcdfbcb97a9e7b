"""Gate evaluation: boundaries, skipped gates, the pyproject table and race rows."""
from pathlib import Path

import pytest

from racelab.reports.gates import (FAIL, GATES, PASS, SKIP, GateConfigError, Verdict, evaluate, evaluate_races,
                           format_value, load_limits)

LIMITS = {gate.key: gate.default for gate in GATES}
PASSING = {"time_to_display_p95_ms": 120.0, "anomalies": 0, "error_rate_pct": 0.0, "job_success_pct": 100.0,
           "stuck_files": 0, "task_count_accuracy_pct": 100.0}


def status_of(key, value):
    results = evaluate({**PASSING, key: value}, LIMITS)
    return {r.gate.key: r for r in results}[key].status


@pytest.mark.parametrize("key, passing, failing", [
    ("time_to_display_p95_ms", 499.0, 500.0),
    ("anomalies", 0, 1),
    ("error_rate_pct", 0.099, 0.1),
    ("job_success_pct", 99.01, 99.0),
    ("stuck_files", 0, 1),
    ("task_count_accuracy_pct", 100.0, 99.99),
])
def test_gate_boundaries(key, passing, failing):
    assert status_of(key, passing) == PASS
    assert status_of(key, failing) == FAIL


def test_expressions_read_like_k6():
    assert [gate.expression(LIMITS[gate.key]) for gate in GATES] == [
        "time_to_display.p95 < 500ms", "anomalies == 0", "error_rate < 0.1%", "job_success > 99%",
        "stuck_files == 0", "task_count_accuracy == 100%", "commit_duration.p95 < 100ms", "deadlocks == 0",
        "lock_waits < 5/h", "connections.peak < 80%", "imports_not_final == 0", "wrong_task_counts == 0",
        "project_total_mismatches == 0", "duplicate_tasks == 0", "fault_recovery <= 30s"]
    assert GATES[1].expression(3) == "anomalies <= 3"


def test_missing_metric_is_skipped_not_failed():
    results = evaluate({"anomalies": 0}, LIMITS)
    assert [r.status for r in results].count(SKIP) == len(GATES) - 1
    assert Verdict(results, []).passed


def test_breach_names_the_gate_with_measured_value_and_limit():
    verdict = Verdict(evaluate({**PASSING, "time_to_display_p95_ms": 612.0}, LIMITS), [])
    assert not verdict.passed
    assert verdict.breaches() == ["gate time_to_display.p95 < 500ms FAILED: measured 612ms, limit 500ms"]


def test_pyproject_table_overrides_defaults(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname='x'\n\n[tool.racelab.gates]\nanomalies = 2\ntime_to_display_p95_ms = 800\n")
    limits = load_limits(path)
    assert limits["anomalies"] == 2 and limits["time_to_display_p95_ms"] == 800
    assert limits["job_success_pct"] == 99  # not set: the default


def test_pyproject_without_table_uses_defaults(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname='x'\n")
    assert load_limits(path) == LIMITS


def test_repository_pyproject_holds_the_gates():
    assert load_limits(Path(__file__).resolve().parents[2] / "pyproject.toml") == LIMITS


@pytest.mark.parametrize("body, words", [
    ("[tool.racelab.gates]\nanomaly = 0\n", ["unknown key 'anomaly'", "anomalies"]),
    ("[tool.racelab.gates]\nanomalies = 'none'\n", ["not a number", "anomalies = 0"]),
])
def test_bad_gate_table_says_how_to_fix_it(tmp_path, body, words):
    path = tmp_path / "pyproject.toml"
    path.write_text(body)
    with pytest.raises(GateConfigError) as error:
        load_limits(path)
    assert all(word in str(error.value) for word in words)


def test_races_fixed_must_be_clean_and_buggy_must_reproduce_every_run():
    rows = [
        {"race": "R1", "mode": "fixed", "runs": 20, "anomalies": 0, "reproduced_pct": 0, "example": ""},
        {"race": "R1", "mode": "buggy", "runs": 20, "anomalies": 20, "reproduced_pct": 100, "example": "seed 3"},
        {"race": "R3", "mode": "fixed", "runs": 20, "anomalies": 1, "reproduced_pct": 5, "example": "seed 9"},
        {"race": "R3", "mode": "buggy", "runs": 20, "anomalies": 19, "reproduced_pct": 95, "example": "seed 4"},
    ]
    results = evaluate_races(rows)
    assert [r.status for r in results] == [PASS, PASS, FAIL, FAIL]
    assert results[2].message() == "race R3 [fixed] FAILED: 1 anomalies in 20 runs, required anomalies == 0"
    assert "reproduced in 95% of 20 runs" in results[3].message()


def test_race_row_with_unknown_mode_is_refused():
    with pytest.raises(GateConfigError, match="use one of fixed, buggy"):
        evaluate_races([{"race": "R1", "mode": "sometimes", "runs": 1}])
    with pytest.raises(GateConfigError, match="needs race, mode"):
        evaluate_races([{"mode": "fixed"}])


def test_values_never_round_into_their_limit():
    assert format_value(99.999, "%") == "99.999%"
    assert format_value(22.22222, "%") == "22.22%"
    assert (format_value(612.0, "ms"), format_value(3, ""), format_value(None, "%")) == ("612ms", "3", "n/a")


def test_race_row_that_did_not_run_is_skipped_not_failed():
    rows = [{"race": "R8", "mode": "buggy", "runs": 0, "anomalies": 0, "reproduced_pct": 0.0, "example": None,
             "skipped": 20, "skip_reason": "needs PostgreSQL"}]
    (result,) = evaluate_races(rows)
    assert result.status == SKIP and Verdict([], [result]).passed
    assert result.message() == "race R8 [buggy]: skipped, no run (needs PostgreSQL)"
