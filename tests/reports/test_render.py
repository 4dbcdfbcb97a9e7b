"""The four report files and the command line: outcome, junit cases, a self-contained page."""
import html
import json
import re
import xml.etree.ElementTree as ET

import pytest
from results_files import race, write_json, write_load

from racelab.reports.__main__ import main
from racelab.reports.report import OUTPUT_FILES, write_report
from racelab.reports.gates import GATES

RACES = [race("R1", "fixed"), race("R1", "buggy", 20, 100.0, example="seed 7"),
         race("R3", "fixed", 2, 10.0, example="parent completed early (seed 9)")]


@pytest.fixture
def passing(tmp_path):
    return write_load(tmp_path / "results")


@pytest.fixture
def failing(tmp_path):
    folder = write_load(tmp_path / "results", anomalies={"zero_tasks_after_done": 2}, display_p95=700,
                        counters={"checks": 200, "count_mismatches": 2, "jobs_completed": 50})
    return write_json(folder, "races.json", RACES)


def test_passing_run_writes_four_files_and_exits_0(passing, tmp_path, capsys):
    out = tmp_path / "latest"
    assert main(["--results", str(passing), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    printed = capsys.readouterr().out
    assert printed.startswith("✅ all gates passed") and "report.html" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["breaches"] == []


def test_breach_exits_1_and_names_each_gate_with_measured_value_and_limit(failing, tmp_path, capsys):
    assert main(["--results", str(failing), "--out", str(tmp_path / "latest")]) == 1
    printed = capsys.readouterr().out
    assert "✗ gate time_to_display.p95 < 500ms FAILED: measured 700ms, limit 500ms" in printed
    assert "✗ gate anomalies == 0 FAILED: measured 2, limit 0" in printed
    assert "✗ race R3 [fixed] FAILED: 2 anomalies in 20 runs, required anomalies == 0" in printed


def test_nothing_to_judge_exits_2_with_what_to_run(tmp_path, capsys):
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "latest")]) == 2
    assert "--csv-full-history" in capsys.readouterr().err
    assert not (tmp_path / "latest").exists()


def test_junit_has_one_case_per_gate_and_race_and_failures_carry_value_and_limit(failing, tmp_path):
    write_report(failing, tmp_path / "latest")
    root = ET.parse(tmp_path / "latest" / "junit.xml").getroot()
    gates, races = root.findall("testsuite")
    assert [len(gates.findall("testcase")), len(races.findall("testcase"))] == [len(GATES), 3]
    assert root.get("tests") == str(len(GATES) + 3) and root.get("failures") == "4"
    failure = gates.find("testcase[@name='time_to_display.p95 < 500ms']/failure")
    assert failure.get("message") == "measured 700ms, limit 500ms"
    race_failure = races.find("testcase[@name='R3 [fixed]']/failure")
    assert race_failure.get("message") == "measured 2 anomalies, limit anomalies == 0"
    assert "seed 9" in race_failure.text


def test_skipped_gates_are_skipped_cases(tmp_path):
    folder = write_json(tmp_path / "results", "races.json", RACES[:2])
    verdict, _ = write_report(folder, tmp_path / "latest")
    assert verdict.passed
    root = ET.parse(tmp_path / "latest" / "junit.xml").getroot()
    assert root.get("skipped") == str(len(GATES)) and root.get("failures") == "0"


def test_markdown_shows_gates_races_and_anomalies(failing, tmp_path):
    write_report(failing, tmp_path / "latest")
    md = (tmp_path / "latest" / "summary.md").read_text()
    assert md.startswith(f"## racelab gates — ❌ 3 of {len(GATES)} gates failed; 1 of 3 races failed")
    assert "| ❌ | `time_to_display.p95 < 500ms` | 700ms | 500ms |" in md
    assert "| ✅ | `error_rate < 0.1%` |" in md
    assert "| ❌ | R3 | fixed | 20 | 2 |" in md
    assert "| `zero_tasks_after_done` | 2 | json5: #0 x.json show 6 tasks, sent 5 |" in md
    assert "Under load: 10 users for 4 s," in md


def test_the_server_time_table_is_in_both_summaries(passing, tmp_path):
    (passing / "server_access.log").write_text("GET /api/projects/3 200 12\nGET /api/projects/4 200 30\n")
    write_report(passing, tmp_path / "latest")
    assert "| `GET /api/projects/[id]` | 2 | 30 ms | 30 ms |" in (tmp_path / "latest" / "summary.md").read_text()
    page = (tmp_path / "latest" / "report.html").read_text()
    assert "<h2>Server time</h2>" in page and "<code>GET /api/projects/[id]</code>" in page


def test_a_time_to_display_breach_on_a_busy_load_machine_says_what_to_do(failing, tmp_path):
    write_json(failing, "host_cpu.json", {"cores": 2, "busy_pct": 85.5})
    write_report(failing, tmp_path / "latest")
    for name in ("summary.md", "report.html"):
        text = html.unescape((tmp_path / "latest" / name).read_text())
        assert "The load machine's 2 cores were 85.5 % busy. Requests waited for CPU" in text, name
        assert "point racelab load --host at it" in text, name


def test_a_busy_load_machine_with_the_app_elsewhere_is_told_to_spread_the_load_generator(failing, tmp_path):
    write_json(failing, "host_cpu.json", {"cores": 2, "busy_pct": 90, "app_here": False})
    write_report(failing, tmp_path / "latest")
    md = (tmp_path / "latest" / "summary.md").read_text()
    assert "The load generator was short of CPU" in md and "machine of its own" not in md


def test_a_quiet_load_machine_or_a_passing_gate_gets_the_figure_alone(failing, passing, tmp_path):
    for folder, busy in ((failing, 40), (passing, 95)):
        write_json(folder, "host_cpu.json", {"cores": 2, "busy_pct": busy})
        write_report(folder, tmp_path / folder.name)
        md = (tmp_path / folder.name / "summary.md").read_text()
        assert f"cores were {busy} % busy." in md and "waited for CPU" not in md


def test_html_is_one_self_contained_page(failing, tmp_path):
    write_report(failing, tmp_path / "latest")
    page = (tmp_path / "latest" / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    for section in ("Latency percentiles over time", "Time to display", "File-upload status distribution",
                    "Races", "Gates"):
        assert f"<h2>{section}</h2>" in page
    assert page.count("<svg") >= 3 and "zero_tasks_after_done" in page
    assert "Under load: 10 users for 4 s," in page


def test_github_step_summary_gets_the_markdown(passing, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    main(["--results", str(passing), "--out", str(tmp_path / "latest")])
    assert summary.read_text().startswith("## racelab gates")


def test_exploration_figures_appear_beside_the_races(passing, tmp_path):
    explored = [{"race": "R1", "db": "postgresql", "workers": "threads", "strategy": "pos", "mode": "buggy",
                 "seeds": 20, "found": 20, "median_runs": 1.5, "max_runs": 6, "runs": 40, "runs_per_second": 19.6},
                {"race": "R11", "db": "sqlite", "workers": "threads", "strategy": "pos", "mode": "buggy", "seeds": 0,
                 "skipped": "R11 cannot race on SQLite"}]
    write_json(passing, "races.json", {"races": RACES[:1], "explore": explored})
    out = tmp_path / "latest"
    main(["--results", str(passing), "--out", str(out)])

    markdown = (out / "summary.md").read_text()
    assert "### Exploration" in markdown and "| R1 | postgresql | threads | pos | buggy | 20 | 20 of 20 | 1.5 | 6 | 19.6 |" in markdown
    assert "skipped: R11 cannot race on SQLite" in markdown
    page = (out / "report.html").read_text()
    assert "<h2>Exploration</h2>" in page and "20 of 20" in page and "| R1 | fixed |" not in page
