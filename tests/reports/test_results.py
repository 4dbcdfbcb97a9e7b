"""Reading a results folder into the metrics dict."""
import pytest
from results_files import race, write_json, write_load

from racelab.reports.results import ResultsError, load_results, percentile


def test_locust_files_make_the_load_metrics(tmp_path):
    write_load(tmp_path, http=2000, http_failures=1, anomalies={"task_count_mismatch": 3, "stuck_import": 1},
               counters={"checks": 200, "count_mismatches": 3, "jobs_completed": 98, "jobs_failed": 1,
                         "jobs_stuck": 1, "stuck_files": 0})
    metrics = load_results(tmp_path).metrics
    assert metrics["anomalies"] == 4
    assert metrics["anomalies_by_name"] == {"task_count_mismatch": 3, "stuck_import": 1}
    assert metrics["error_rate_pct"] == pytest.approx(0.05)  # anomalies and display events are not requests
    assert metrics["time_to_display_p95_ms"] == 40
    assert metrics["task_count_accuracy_pct"] == pytest.approx(98.5)
    assert metrics["job_success_pct"] == pytest.approx(98.0)
    assert metrics["stuck_files"] == 1  # the stuck import counts


def test_the_load_level_comes_with_the_figures(tmp_path):
    write_load(tmp_path, http=1000, counters={"imports_sync": 30, "imports_async": 10})
    assert load_results(tmp_path).metrics["load"] == {"users": 10, "seconds": 4, "requests_per_s": 250.0,
                                                      "imports": 40, "imports_per_s": 10.0, "imports_async": 10}


def test_exact_histogram_wins_over_locust_rounded_percentiles(tmp_path):
    histogram = {str(ms): 1 for ms in range(1, 101)}  # 1..100 ms, one import each
    write_load(tmp_path, display_count=100, display_p95=999, histogram=histogram)
    figures = load_results(tmp_path).metrics["time_to_display"]["time_to_display"]
    assert (figures["p50"], figures["p95"], figures["p99"]) == (51, 96, 100)  # Locust's (upper) definition


def test_the_served_apps_access_log_gives_the_server_time_per_endpoint(tmp_path):
    write_load(tmp_path)
    lines = [f"GET /api/projects/{n % 3}/imports/{n} 200 {n}" for n in range(1, 101)]
    lines += ["POST /api/projects/7/import 201 40", "POST /api/projects/8/import 400 60", "a line of something else"]
    (tmp_path / "server_access.log").write_text("\n".join(lines) + "\n")

    assert load_results(tmp_path).metrics["server_time"] == {
        "GET /api/projects/[id]/imports/[id]": {"count": 100, "p50": 51, "p95": 96},
        "POST /api/projects/[id]/import": {"count": 2, "p50": 60, "p95": 60},
    }


def test_without_an_access_log_there_is_no_server_time(tmp_path):
    write_load(tmp_path)
    assert load_results(tmp_path).metrics["server_time"] == {}


def test_the_load_machines_cpu_comes_with_the_figures_when_racelab_load_measured_it(tmp_path):
    write_load(tmp_path)
    assert load_results(tmp_path).metrics["host_cpu"] is None
    write_json(tmp_path, "host_cpu.json", {"cores": 2, "busy_pct": 81.0})
    assert load_results(tmp_path).metrics["host_cpu"] == {"cores": 2, "busy_pct": 81.0}


def test_percentile_matches_locusts_definition():
    assert percentile({10: 96, 600: 4}, 0.95) == 10
    assert percentile({10: 95, 600: 5}, 0.95) == 600


def test_several_runs_add_up(tmp_path):
    write_load(tmp_path, prefix="uploads", http=1000, http_failures=2, display_p95=100,
               histogram={"100": 150, "30": 50}, display_count=200)
    write_load(tmp_path, prefix="mixed", http=1000, anomalies={"bad_file_accepted": 2}, display_p95=30,
               histogram={"30": 200}, display_count=200)
    res = load_results(tmp_path)
    assert res.metrics["runs"] == 2 and res.metrics["anomalies"] == 2
    assert res.metrics["error_rate_pct"] == pytest.approx(0.1)
    assert res.metrics["time_to_display"]["time_to_display"]["count"] == 400
    assert res.metrics["time_to_display_p95_ms"] == 100  # from the merged histogram
    assert res.statuses["load users"]["completed"] == 400


def test_health_fractions_become_percentages_and_the_worst_source_wins(tmp_path):
    write_load(tmp_path, counters={"checks": 100, "count_mismatches": 0, "jobs_completed": 10})
    write_json(tmp_path, "health.json", {
        "status": "unhealthy",
        "checks": {"task_count_accuracy": "fail", "stuck_files": 3, "rq_job_success_rate": 0.985},
        "metrics": {"task_count_accuracy": 0.97, "status_distribution": {"completed": 9, "processing": 1}}})
    res = load_results(tmp_path)
    assert res.metrics["task_count_accuracy_pct"] == pytest.approx(97.0)
    assert res.metrics["job_success_pct"] == pytest.approx(98.5)
    assert res.metrics["stuck_files"] == 3
    assert "health endpoint" in res.metrics["sources"]["stuck_files"]
    assert res.statuses["server"] == {"completed": 9, "processing": 1}


def test_health_with_missing_keys_and_races_alone(tmp_path):
    write_json(tmp_path, "health.json", {"status": "healthy", "checks": {"task_count_accuracy": "pass"}})
    write_json(tmp_path, "races.json", [race("R1", "fixed"), race("R1", "buggy", 20, 100)])
    res = load_results(tmp_path)
    assert res.metrics["task_count_accuracy_pct"] == 100.0
    assert res.metrics["anomalies"] is None and res.metrics["time_to_display_p95_ms"] is None
    assert len(res.races) == 2


def test_locust_writes_zero_percentiles_before_its_window_fills(tmp_path):
    write_load(tmp_path)
    points = load_results(tmp_path).history[("METRIC", "time_to_display")]
    assert points[0]["95%"] is None and points[1]["95%"] == 40


def test_empty_or_missing_folder_says_what_to_run(tmp_path):
    with pytest.raises(ResultsError, match="--csv-full-history"):
        load_results(tmp_path)
    with pytest.raises(ResultsError, match="racelab load"):
        load_results(tmp_path / "absent")


def test_broken_json_names_the_file(tmp_path):
    (tmp_path / "races.json").write_text("[{")
    with pytest.raises(ResultsError, match="races.json is not valid JSON"):
        load_results(tmp_path)
