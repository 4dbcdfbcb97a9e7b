"""The campaign table sums up one report folder per fault kind, as ``make load-faults`` writes them."""
import json

from racelab.reports.__main__ import main
from racelab.reports.report import write_report
from tests.reports.results_files import write_json, write_load

CLEAN = {"imports_not_final": 0, "wrong_task_counts": 0, "project_total_mismatches": 0, "duplicate_tasks": 0,
         "examples": [], "checked": {"imports": 4, "files": 6, "tasks": 40, "sent": 6}, "waited_s": 1.5,
         "wait_limit_s": 120}


def run(campaign, kind, recovery, completeness=CLEAN):
    results = write_load(campaign / kind / "results", counters={"imports_async": 30, "imports_sync": 2,
                                                            "import_retries": 3})
    write_json(results, "completeness.json", completeness)
    fault = {"kind": kind, "role": "worker", "pids": [7], "signal": "SIGKILL", "start": 1700000001.0,
             "end": 1700000002.0, "caught": 4, **recovery}
    (results / "faults.jsonl").write_text(json.dumps(fault) + "\n")
    write_report(results, campaign / kind)


def test_each_run_is_a_row_with_its_load_its_counts_and_its_recovery(tmp_path, capsys):
    run(tmp_path, "kill-workers", {"recovered_s": 20.9})
    run(tmp_path, "kill-redis", {"recovered_s": None, "probed_s": 60.0, "cut_short": False, "not_recovered": "503"},
        {**CLEAN, "duplicate_tasks": 2})
    assert main(["--campaign", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table == (tmp_path / "summary.md").read_text()
    rows = table.splitlines()
    assert rows[0].startswith("| fault | held | imports | failed requests | retries |")
    assert rows[2] == "| kill-redis | 1 s | 32 (30 async) | 0% | 3 | 0 | 0 | 0 | 2 | 0 | 4 | not in 60 s | FAIL |"
    assert rows[3] == "| kill-workers | 1 s | 32 (30 async) | 0% | 3 | 0 | 0 | 0 | 0 | 0 | 4 | 20.9 s | pass |"


def test_a_folder_without_runs_says_what_it_expected(tmp_path, capsys):
    assert main(["--campaign", str(tmp_path)]) == 2
    assert "expected KIND/summary.json, as `make load-faults` writes" in capsys.readouterr().err
