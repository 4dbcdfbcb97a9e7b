"""A real headless Locust run of two scenarios against the stub, then the gated report on its files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from stub_target import StubServer, StubState

ROOT = Path(__file__).resolve().parents[2]


def run_load_then_report(tmp_path, state):
    """Run Locust for 4 s against a stub in ``state``; return (report exit code, its output, summary.json)."""
    results = tmp_path / "results"
    env = {**os.environ, "RACELAB_TOKEN": "testtoken", "RACELAB_IMPORT_DEADLINE": "1"}
    with StubServer(state) as server:
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", "locustfiles/uploads.py,locustfiles/mixed.py", "--headless",
             "-u", "6", "-r", "6", "-t", "4s", "--host", server.url, "--csv", str(results / "load"),
             "--csv-full-history", "--only-summary", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    report = subprocess.run([sys.executable, "-m", "reports", "--results", str(results), "--out",
                             str(tmp_path / "latest")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    return report.returncode, report.stdout + report.stderr, summary


@pytest.mark.timeout(180)
def test_clean_target_passes_every_gate_it_can_measure(tmp_path):
    code, output, summary = run_load_then_report(tmp_path, StubState())
    assert code == 0, output
    metrics = summary["metrics"]
    assert metrics["anomalies"] == 0 and metrics["time_to_display"]["time_to_display"]["count"] > 0
    assert metrics["load_counters"]["checks"] > 0 and summary["file_upload_statuses"]["load users"]
    assert {"load_stats.csv", "load_stats_history.csv", "load_racelab.json", "load_health.json"} <= set(
        summary["files"])


@pytest.mark.timeout(180)
def test_wrong_counts_under_load_fail_the_anomaly_gate(tmp_path):
    code, output, summary = run_load_then_report(tmp_path, StubState(count_offset=1, fault_every=3))
    assert code == 1, output
    assert "✗ gate anomalies == 0 FAILED: measured" in output
    assert "task_count_mismatch" in summary["metrics"]["anomalies_by_name"]
    assert summary["metrics"]["task_count_accuracy_pct"] < 100


@pytest.mark.timeout(180)
def test_retried_imports_pass_the_gates_and_are_counted_in_the_results(tmp_path):
    code, output, summary = run_load_then_report(tmp_path, StubState(import_faults=["503"]))
    assert code == 0, output  # every import's first attempt met a 503 and its retry went through
    counters = json.loads((tmp_path / "results" / "load_racelab.json").read_text())["counters"]
    assert counters["import_retries_after_503"] == counters["import_retries"] > 0
    assert summary["metrics"]["load_counters"]["import_retries"] == counters["import_retries"]
    assert summary["metrics"]["http_failures"] == 0
    assert "/api/projects/[id]/import [retry]" in (tmp_path / "results" / "load_stats.csv").read_text()
