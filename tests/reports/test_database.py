"""The database figures of a results folder: commit logs and ``database.json`` into gates, tables and charts."""
import json

from results_files import write_json, write_load

from racelab.reports.report import write_report
from racelab.reports.results import load_results

T0 = 1_800_000_000.0


def write_commits(folder, records, pid=1):
    logs = folder / "commit_log"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"commits-{pid}.jsonl", "a") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def postgres_watch(samples=(), deadlocks=(0, 0), waits=0, logged_deadlocks=0, max_connections=100, seconds=60):
    return {"vendor": "postgresql", "not_measured": {}, "started": T0, "ended": T0 + seconds,
            "max_connections": max_connections, "deadlocks": {"before": deadlocks[0], "after": deadlocks[1]},
            "lock_waits": {"count": waits, "deadlocks_logged": logged_deadlocks, "longest_ms": 150.0 if waits else 0.0,
                           "source": "the server log"},
            "samples": [{"t": T0 + i, "connections": c, "waiting": 0, "longest_wait_ms": 0.0}
                        for i, c in enumerate(samples)]}


def test_commits_of_every_process_make_the_commit_percentiles(tmp_path):
    write_commits(tmp_path, [{"t": T0 + i, "commit_ms": 1.0, "vendor": "postgresql"} for i in range(95)], pid=1)
    write_commits(tmp_path, [{"t": T0 + i, "commit_ms": 250.0, "vendor": "postgresql"} for i in range(5)], pid=2)
    metrics = load_results(write_json(tmp_path, "database.json", postgres_watch())).metrics

    assert metrics["database"]["commit"] == {"count": 100, "p50": 1.0, "p95": 250.0, "max": 250.0}
    assert metrics["commit_p95_ms"] == 250.0
    assert metrics["sources"]["commit_p95_ms"] == "100 commits in the app's processes"
    assert len(metrics["database"]["commit_timeline"]) <= 60


def test_a_torn_last_line_of_a_killed_process_is_skipped(tmp_path):
    write_commits(tmp_path, [{"t": T0, "commit_ms": 2.0, "vendor": "sqlite"}])
    with open(tmp_path / "commit_log" / "commits-1.jsonl", "a") as handle:
        handle.write('{"t": 18000')
    assert load_results(tmp_path).metrics["database"]["commit"]["count"] == 1


def test_deadlocks_take_the_larger_of_the_counter_and_the_log(tmp_path):
    write_json(tmp_path, "database.json", postgres_watch(deadlocks=(3, 3), logged_deadlocks=1))
    assert load_results(tmp_path).metrics["deadlocks"] == 1  # the counter had not been flushed yet
    write_json(tmp_path, "database.json", postgres_watch(deadlocks=(3, 5), logged_deadlocks=0))
    assert load_results(tmp_path).metrics["deadlocks"] == 2


def test_lock_waits_are_scaled_to_an_hour_of_the_run(tmp_path):
    write_json(tmp_path, "database.json", postgres_watch(waits=1, seconds=720))
    metrics = load_results(tmp_path).metrics
    assert metrics["lock_waits_per_hour"] == 5.0
    assert metrics["sources"]["lock_waits_per_hour"] == "1 wait(s) of 100 ms or more in 720 s, from the server log"


def test_a_lock_wait_the_server_logged_names_its_statement_in_the_gate(tmp_path):
    watch = postgres_watch(waits=2, seconds=60)
    watch["lock_waits"]["logged"] = [
        {"wait": "process 7 still waiting for ShareLock on transaction 9 after 100.1 ms",
         "context": 'while updating tuple (0,1) in relation "projects_project"',
         "statement": 'UPDATE "projects_project" SET "next_inner_id" = "next_inner_id" + 5 WHERE "id" = 3'},
        {"wait": "process 8 still waiting for ShareLock on transaction 9 after 100.3 ms", "context": "",
         "statement": ""}]
    metrics = load_results(write_json(tmp_path, "database.json", watch)).metrics
    assert metrics["sources"]["lock_waits_per_hour"] == (
        '2 wait(s) of 100 ms or more in 60 s, from the server log; the first: UPDATE "projects_project" SET '
        '"next_inner_id" = "next_inner_id" + 5 WHERE "id" = 3 (while updating tuple (0,1) in relation "projects_project")')


def test_sqlite_lock_waits_and_locked_errors_come_from_the_app(tmp_path):
    write_commits(tmp_path, [{"t": T0, "commit_ms": 1.0, "vendor": "sqlite"}, {"t": T0 + 1, "lock_wait_ms": 180.0},
                             {"t": T0 + 2, "locked_error": "INSERT INTO task"}])
    write_json(tmp_path, "database.json", {"vendor": "sqlite", "started": T0, "ended": T0 + 3600,
                                           "not_measured": {"deadlocks": "SQLite has no server",
                                                            "connections_peak_pct": "SQLite has no server"}})
    verdict, results = write_report(tmp_path, tmp_path / "report")

    assert results.metrics["lock_waits_per_hour"] == 2.0
    assert results.metrics["database"]["lock_waits"]["locked_errors"] == 1
    assert verdict.gate("deadlocks").status == "skipped"
    assert "not measured: SQLite has no server" in verdict.gate("deadlocks").message()
    junit = (tmp_path / "report" / "junit.xml").read_text()
    assert "not measured: SQLite has no server" in junit


def test_connections_peak_counts_every_application_against_max_connections(tmp_path):
    samples = [{"racelab web": 4, "racelab worker": 3}, {"racelab web": 8, "racelab worker": 2}, {"racelab web": 2}]
    write_json(tmp_path, "database.json", postgres_watch(samples=samples, max_connections=20))
    details = load_results(tmp_path).metrics["database"]["connections"]
    assert (details["peak"], details["mean"]) == (10, 6.3)
    assert details["peak_by_application"] == {"racelab web": 8, "racelab worker": 3}
    assert load_results(tmp_path).metrics["connections_peak_pct"] == 50.0


def test_the_report_shows_the_figures_beside_the_seed_plans_targets_and_draws_them(tmp_path):
    write_load(tmp_path)
    write_commits(tmp_path, [{"t": T0 + i, "commit_ms": 1.0 + i % 3, "vendor": "postgresql"} for i in range(30)])
    write_json(tmp_path, "database.json", postgres_watch(samples=[{"racelab web": 3}] * 5, deadlocks=(0, 1)))
    verdict, _ = write_report(tmp_path, tmp_path / "report")

    assert [r.message() for r in verdict.failed] == ["gate deadlocks == 0 FAILED: measured 1, limit 0 — "
                                                     "pg_stat_database and the server log"]
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "| commit duration | p50 2 ms · p95 3 ms · max 3 ms (30 commits) | < 100 ms p95 |" in md
    assert "| deadlocks | 1 | 0 (rollback above 10/hour) |" in md
    page = (tmp_path / "report" / "report.html").read_text()
    assert "commit duration over time" in page and "connections over time" in page
    assert page.count("<polyline") >= 4  # p50, p95, max; total and web connections


def test_an_external_app_says_what_could_not_be_measured(tmp_path):
    write_load(tmp_path)
    write_json(tmp_path, "database.json", {"vendor": None, "started": T0, "ended": T0 + 60, "not_measured": {
        "commit_p95_ms": "the app was not served by racelab", "deadlocks": "pass --db-url",
        "lock_waits_per_hour": "pass --db-url", "connections_peak_pct": "pass --db-url"}})
    verdict, _ = write_report(tmp_path, tmp_path / "report")

    for key in ("commit_p95_ms", "deadlocks", "lock_waits_per_hour", "connections_peak_pct"):
        assert verdict.gate(key).status == "skipped" and "not measured" in verdict.gate(key).source
    assert "| commit_duration.p95 | not measured: the app was not served by racelab |" in (
        tmp_path / "report" / "summary.md").read_text()
