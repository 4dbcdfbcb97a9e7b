"""The completeness gates and the fault timeline of the report, from results folders written by hand.

Each gate fails on a ``completeness.json`` that shows its breach and passes on the clean
one; ``racelab.completeness`` writing those figures from a real database is tested in
``tests/load/test_completeness_check.py``.
"""
import json

import pytest

from racelab.reports.report import write_report
from tests.reports.results_files import write_json, write_load

CLEAN = {"imports_not_final": 0, "wrong_task_counts": 0, "project_total_mismatches": 0, "duplicate_tasks": 0,
         "examples": [], "checked": {"imports": 4, "files": 6, "tasks": 40, "sent": 6}, "waited_s": 1.5,
         "wait_limit_s": 660}
KEYS = ("imports_not_final", "wrong_task_counts", "project_total_mismatches", "duplicate_tasks")


def report(tmp_path, completeness=None, faults=()):
    results = write_load(tmp_path / "results")
    if completeness is not None:
        write_json(results, "completeness.json", completeness)
    if faults:
        (results / "faults.jsonl").write_text("".join(json.dumps(f) + "\n" for f in faults) + '{"torn')
    verdict, _ = write_report(results, tmp_path / "out")
    return verdict


def test_the_clean_check_passes_every_completeness_gate(tmp_path):
    verdict = report(tmp_path, CLEAN)
    assert [verdict.gate(key).status for key in KEYS] == ["pass"] * 4
    assert "40 tasks, after waiting 1.5 of 660 s" in verdict.gate("duplicate_tasks").source


@pytest.mark.parametrize("key, example", [
    ("duplicate_tasks", "project 3: 2 tasks with the data {\"text\": \"json task 1 ab12\"}"),
    ("wrong_task_counts", "project 3: files [7] show 4 tasks, the client sent 5"),
    ("imports_not_final", "import 9 still in_progress when the wait ended"),
    ("project_total_mismatches", "project 3 holds 12 tasks, its completed files and JSON imports 10"),
])
def test_each_breach_fails_its_own_gate_and_names_the_row(key, example, tmp_path):
    verdict = report(tmp_path, {**CLEAN, key: 1, "examples": [example]})
    assert {k: verdict.gate(k).status for k in KEYS} == {k: "fail" if k == key else "pass" for k in KEYS}
    assert f"gate {key} == 0 FAILED: measured 1, limit 0" in verdict.breaches()[0]
    assert example in (tmp_path / "out" / "summary.md").read_text()


def test_without_a_check_the_gates_are_skipped_and_an_unreadable_database_says_why(tmp_path):
    assert {report(tmp_path / "a").gate(k).status for k in KEYS} == {"skipped"}
    verdict = report(tmp_path / "b", {"not_measured": "cannot read the app's tables", "waited_s": 0, "wait_limit_s": 0})
    assert verdict.gate("duplicate_tasks").status == "skipped"
    assert "not measured: cannot read the app's tables" in verdict.gate("duplicate_tasks").source


def test_faults_are_shaded_on_the_latency_charts_listed_and_exempt_the_speed_gates(tmp_path):
    faults = [{"kind": "pause-postgres", "role": "postgres", "pids": [11, 12, 13, 14], "signal": "SIGSTOP",
               "start": 1700000001.0, "end": 1700000003.0},
              {"kind": "kill-web", "role": "web", "pids": [21], "signal": "SIGKILL", "start": 1700000003.5,
               "end": 1700000004.0}]
    verdict = report(tmp_path, CLEAN, faults)
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("<title>pause-postgres</title>") >= 2  # a band on each latency chart
    assert "<h2>Faults</h2>" in html and "11 and 3 more of its processes" in html
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| pause-postgres | 11 and 3 more of its processes | 1.0 s | 3.0 s | 2.0 | not probed |" in summary
    assert "| kill-web | 21 | 3.5 s | 4.0 s | 0.5 | not probed |" in summary
    display = verdict.gate("time_to_display_p95_ms")
    assert display.status == "skipped" and "not judged under 2 injected fault(s)" in display.source
    assert display.measured == 40  # still reported as measured
    assert verdict.gate("anomalies").status == "pass" and verdict.gate("duplicate_tasks").status == "pass"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["faults"][1]["kind"] == "kill-web"


def fault(kind, **recovery):
    return {"kind": kind, "role": "worker", "pids": [31], "signal": "SIGKILL", "start": 1700000001.0,
            "end": 1700000002.0, "caught": 3, **recovery}


def test_the_slowest_recovery_is_gated_and_a_fault_cut_short_by_the_next_is_left_out(tmp_path):
    verdict = report(tmp_path, CLEAN, [
        fault("kill-worker", recovered_s=4.5),
        fault("kill-redis", recovered_s=None, probed_s=7.0, cut_short=True, not_recovered="the health check answered 503"),
        fault("pause-worker", recovered_s=12.0)])
    gate = verdict.gate("fault_recovery_s")
    assert gate.status == "pass" and gate.measured == 12.0
    assert gate.source == "slowest of 2 fault(s): pause-worker at 12 s; 1 not judged: the next fault came before they recovered"
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| in 4.5 s |" in summary
    assert "| not after 7 s, then the next fault came: the health check answered 503 |" in summary


@pytest.mark.parametrize("faults, measured", [
    ([fault("kill-workers", recovered_s=31.0)], 31.0),
    ([fault("kill-redis", recovered_s=None, probed_s=60.2, cut_short=False, not_recovered="1 of the 3 imports")], 60.2),
])
def test_a_slow_recovery_or_none_in_the_whole_window_fails_the_gate(faults, measured, tmp_path):
    verdict = report(tmp_path, CLEAN, faults)
    assert verdict.gate("fault_recovery_s").status == "fail" and verdict.gate("fault_recovery_s").measured == measured
    assert f"gate fault_recovery <= 30s FAILED: measured {measured:g}s" in " ".join(verdict.breaches())


def test_a_run_without_faults_has_no_fault_section(tmp_path):
    report(tmp_path, CLEAN)
    assert "Faults" not in (tmp_path / "out" / "report.html").read_text()
