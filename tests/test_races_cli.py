"""`racelab races`: its table, JSON and exit code over a small fake results file (no scenario runs)."""
import argparse
import json

import pytest

from racelab.commands import races


def row(race, mode, seed, anomalies=0, example=None, skipped=None):
    return {"race": race, "mode": mode, "seed": seed, "anomalies": anomalies,
            "messages": [example] if example else [], "example": example, "skipped": skipped}


GOOD = [row("R3", "fixed", 1), row("R3", "fixed", 2),
        row("R3", "buggy", 1, 1, "[pdf_fan_in_is_exact] parent lost an update"),
        row("R3", "buggy", 2, 2, "[pdf_fan_in_is_exact] parent lost an update"),
        row("R11", "fixed", 1), row("R11", "buggy", 1, skipped="SQLite masks R11")]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_summary_counts_runs_anomalies_and_reproduction(tmp_path):
    summary = races.summarise(races.load_results(write(tmp_path / "r.jsonl", GOOD)), ["R3", "R11"], ["fixed", "buggy"])

    by = {(s["race"], s["mode"]): s for s in summary}
    assert (by["R3", "fixed"]["runs"], by["R3", "fixed"]["anomalies"], by["R3", "fixed"]["reproduced_pct"]) == (2, 0, 0.0)
    assert (by["R3", "buggy"]["runs"], by["R3", "buggy"]["anomalies"], by["R3", "buggy"]["reproduced_pct"]) == (2, 2, 100.0)
    assert by["R3", "buggy"]["example"] == "[pdf_fan_in_is_exact] parent lost an update"
    assert (by["R11", "buggy"]["runs"], by["R11", "buggy"]["skipped"]) == (0, 1)
    assert races.exit_code(summary) == 0


@pytest.mark.parametrize("bad, word", [
    (row("R3", "fixed", 3, 1, "[pdf_fan_in_is_exact] lost update with the fix on"), "ANOMALY"),
    (row("R3", "buggy", 3, 0), "NOT REPRODUCED"),
])
def test_a_fixed_anomaly_or_a_missed_reproduction_fails(tmp_path, bad, word):
    summary = races.summarise(races.load_results(write(tmp_path / "r.jsonl", GOOD + [bad])), ["R3"], ["fixed", "buggy"])

    assert races.exit_code(summary) == 1
    assert word in races.format_table(summary, width=200)


def test_a_requested_race_without_any_result_fails(tmp_path):
    summary = races.summarise(races.load_results(write(tmp_path / "r.jsonl", GOOD)), ["R3", "R5"], ["fixed"])

    assert races.exit_code(summary) == 1
    assert "NO RESULT" in races.format_table(summary, width=200)


def test_table_has_one_aligned_line_per_race_and_mode(tmp_path):
    summary = races.summarise(GOOD, ["R3", "R11"], ["fixed", "buggy"])
    lines = races.format_table(summary, width=120).splitlines()

    assert lines[0].split()[:5] == ["race", "mode", "runs", "anomalies", "reproduced"]
    assert len(lines) == 2 + 4
    assert lines[3].split()[:6] == ["R3", "buggy", "2", "2", "100%", "reproduced"]
    assert all(len(line) <= 120 for line in lines[2:])
    assert "skipped: SQLite masks R11" in lines[5]


def test_json_is_a_list_of_the_documented_fields(tmp_path):
    summary = races.summarise(GOOD, ["R3"], ["fixed", "buggy"])
    races.write_json(summary, tmp_path / "latest" / "races.json")

    data = json.loads((tmp_path / "latest" / "races.json").read_text())
    assert [(d["race"], d["mode"]) for d in data] == [("R3", "fixed"), ("R3", "buggy")]
    assert {"race", "mode", "runs", "anomalies", "reproduced_pct", "example"} <= set(data[0])


def test_only_parses_and_rejects_unknown_races():
    assert races.parse_races("r3, R1,R3") == ["R1", "R3"]
    assert races.parse_races("") == [f"R{n}" for n in range(1, 13)]
    with pytest.raises(ValueError, match="R13"):
        races.parse_races("R1,R13")


def test_run_prints_progress_writes_json_and_returns_the_verdict(tmp_path, monkeypatch, capsys):
    """run() with pytest replaced by a fake process that writes the results file."""
    launched = {}

    class FakePytest:
        def __init__(self, argv, cwd, env, stdout, stderr):
            launched["argv"] = argv
            write(__import__("pathlib").Path(env[races.RESULTS_ENV]), GOOD[:4] + [row("R3", "buggy", 3, 0)])
            self.returncode = 1

        def wait(self, timeout=None):
            return self.returncode
    monkeypatch.setattr(races.subprocess, "Popen", FakePytest)
    args = argparse.Namespace(mode="both", only="R3", seeds=3, seed=7, db="postgres", workers=2, no_scheduler=True,
                              output=tmp_path / "races.json")

    assert races.run(args) == 1

    out = capsys.readouterr()
    argv = launched["argv"]
    assert argv[argv.index("-k") + 1] == "(r03_) and not explored and not scheduler"
    assert argv[argv.index("--race-runs") + 1] == "3" and argv[argv.index("--race-seed") + 1] == "7"
    assert argv[argv.index("--race-db") + 1] == "postgres" and argv[argv.index("-n") + 1] == "2"
    assert "[   5/6]" in out.out and "NOT REPRODUCED" in out.out
    assert "R3 buggy: NOT REPRODUCED" in out.err
    assert json.loads((tmp_path / "races.json").read_text())[1]["reproduced_pct"] == pytest.approx(66.7)
