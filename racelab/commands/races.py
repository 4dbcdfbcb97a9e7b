"""Reproduce the race catalogue R1-R12: each race with its fix off (buggy) and on (fixed), seeded.

Runs the scenarios of ``scenarios/`` in one pytest run (``-n 2`` by default) with ``-k`` filters,
``--db``, ``--race-seed`` and ``--race-runs``; each scenario run appends its outcome to the file
named by ``RACELAB_RACES_RESULTS`` (:func:`scenarios.common.record`). Prints progress while it
runs, then a table (race, mode, runs, anomalies, reproduced %, an example anomaly), writes
``reports/latest/races.json`` and exits 1 when a fixed run shows an anomaly, a buggy run does not
reproduce its race, or a requested scenario recorded no result (2 when pytest itself could not run).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from racelab import checkout

ROOT = checkout.require("racelab races")
from scenarios.common import MODES, RACES, RESULTS_ENV, child_env, pytest_command  # noqa: E402 - after require()

DEFAULT_OUTPUT = ROOT / "reports" / "latest" / "races.json"
SCHEDULED = {"R1": 5, "R11": 5}  # fixed-mode scheduler tests and their marker runs


def add_arguments(parser):
    parser.add_argument("--mode", choices=("fixed", "buggy", "both"), default="both",
                        help="Run each race with its fix on (fixed), off (buggy) or both (default).")
    parser.add_argument("--only", default="", metavar="R1,R3",
                        help="Comma list of races to run (default: all of R1-R12).")
    parser.add_argument("--seeds", type=int, default=5, metavar="N",
                        help="Seeded runs per race and mode (default: 5).")
    parser.add_argument("--seed", type=int, default=None, metavar="S",
                        help="First seed (replay one run with --seed S --seeds 1); default: a random one.")
    parser.add_argument("--db", default="sqlite", metavar="sqlite|postgres|URL",
                        help="Database: sqlite, postgres (a throw-away server) or a URL (default: sqlite).")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="pytest-xdist worker processes (default: 2; 0 runs in one process).")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="Skip the fixed-mode PCT scheduler explorations (only the forced interleavings).")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"Where to write the JSON summary (default: {DEFAULT_OUTPUT.relative_to(ROOT)}).")


def parse_races(only):
    """Return the races named in ``only`` (``"R1,r3"``), all of them when empty; raise ValueError on unknown ids."""
    if not only.strip():
        return list(RACES)
    wanted = [part.strip().upper() for part in only.split(",") if part.strip()]
    unknown = [race for race in wanted if race not in RACES]
    if unknown:
        raise ValueError(f"Unknown race(s) {', '.join(unknown)}; use a comma list of {', '.join(RACES)}.")
    return sorted(set(wanted), key=RACES.index)


def load_results(path):
    """Return the outcome rows appended to ``path`` (one JSON object a line); none when it does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(rows, races, modes):
    """Return one summary row per race and mode: runs, runs with anomalies, reproduced %, an example."""
    summary = []
    for race in races:
        for mode in modes:
            mine = [row for row in rows if row["race"] == race and row["mode"] == mode]
            ran = [row for row in mine if not row.get("skipped")]
            found = [row for row in ran if row["anomalies"]]
            skipped = [row for row in mine if row.get("skipped")]
            summary.append({
                "race": race, "mode": mode, "runs": len(ran), "anomalies": len(found),
                "reproduced_pct": round(100.0 * len(found) / len(ran), 1) if ran else 0.0,
                "example": found[0]["example"] if found else None,
                "seeds": sorted({row["seed"] for row in found})[:5] if found else [],
                "skipped": len(skipped), "skip_reason": skipped[0]["skipped"] if skipped else None,
            })
    return summary


def verdict(row):
    """Return ``(ok, word)`` for one summary row."""
    if row["runs"] == 0:
        return (True, "skipped") if row["skipped"] else (False, "NO RESULT")
    if row["mode"] == "fixed":
        return (True, "ok") if row["anomalies"] == 0 else (False, "ANOMALY")
    return (True, "reproduced") if row["anomalies"] == row["runs"] else (False, "NOT REPRODUCED")


def exit_code(summary):
    """Return 0 when every fixed row is clean and every buggy row reproduced in every run, else 1."""
    return 0 if all(verdict(row)[0] for row in summary) else 1


def _clip(text, width):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(summary, width=None):
    """Return the summary as an aligned text table, one line per race and mode."""
    width = width or shutil.get_terminal_size((160, 20)).columns
    head = f"{'race':<5} {'mode':<6} {'runs':>4} {'anomalies':>9} {'reproduced':>10}  {'verdict':<14} example"
    lines = [head, "-" * min(len(head) + 40, width)]
    for row in summary:
        ok, word = verdict(row)
        example = row["example"] or (f"skipped: {row['skip_reason']}" if row["skipped"] and not row["runs"] else "")
        line = (f"{row['race']:<5} {row['mode']:<6} {row['runs']:>4} {row['anomalies']:>9} "
                f"{row['reproduced_pct']:>9g}%  {word:<14} ")
        lines.append(line + _clip(example, max(20, width - len(line))))
    return "\n".join(lines)


def write_json(summary, path):
    """Write the summary as a JSON list of {race, mode, runs, anomalies, reproduced_pct, example, ...}.

    ``racelab explore``'s figures already in the file are kept: the file becomes {"races", "explore"}.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(path.read_text()) if path.exists() else None
    explored = existing.get("explore") if isinstance(existing, dict) else None
    path.write_text(json.dumps({"races": summary, "explore": explored} if explored else summary, indent=2) + "\n")


def _expected_runs(races, modes, seeds, scheduler):
    total = len(races) * len(modes) * seeds
    if scheduler and "fixed" in modes:
        total += sum(max(runs, seeds) for race, runs in SCHEDULED.items() if race in races)
    return total


def follow(argv, env, results, log, describe, expected):
    """Run pytest ``argv`` with its output in ``log``, printing ``describe(rows)`` as each result row lands.

    ``results`` is the JSON Lines file the scenarios append to; return pytest's exit code.
    """
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        seen = 0
        while True:
            try:
                process.wait(timeout=0.25)
                finished = True
            except subprocess.TimeoutExpired:
                finished = False
            rows = load_results(results)
            if len(rows) != seen:
                seen = len(rows)
                print(f"  [{seen:>4}/{expected}] {describe(rows)}", flush=True)
            if finished:
                return process.returncode


def run(args):
    try:
        races = parse_races(args.only)
    except ValueError as exc:
        print(f"racelab races: {exc}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("racelab races: --seeds must be at least 1.", file=sys.stderr)
        return 2
    modes = list(MODES) if args.mode == "both" else [args.mode]
    scheduler = not args.no_scheduler
    work = Path(tempfile.mkdtemp(prefix="racelab-races-"))
    results, log = work / "results.jsonl", work / "pytest.log"
    (work / "home").mkdir()
    argv = pytest_command(races, modes, seeds=args.seeds, seed=args.seed, db=args.db, workers=args.workers,
                          scheduler=scheduler)
    # A private RACELAB_HOME: the SQLite test databases of this run collide with nobody else's.
    env = child_env(**{RESULTS_ENV: str(results), "RACELAB_HOME": str(work / "home")})
    expected = _expected_runs(races, modes, args.seeds, scheduler)
    print(f"racelab races: {', '.join(races)} × {'/'.join(modes)} × {args.seeds} seed(s) on {args.db} "
          f"({expected} runs, {args.workers or 1} worker(s))", flush=True)
    print(f"  pytest: {' '.join(argv[1:])}", flush=True)
    returncode = follow(argv, env, results, log, lambda rows: (
        f"{rows[-1]['race']:<3} {rows[-1]['mode']:<5} seed {rows[-1]['seed']}: "
        f"{'skipped' if rows[-1].get('skipped') else ('anomaly' if rows[-1]['anomalies'] else 'clean')}"
        f"   (runs with an anomaly so far: {sum(1 for row in rows if row['anomalies'])})"), expected)
    summary = summarise(load_results(results), races, modes)
    print()
    print(format_table(summary))
    write_json(summary, args.output)
    print(f"\nWrote {args.output}; pytest log {log}")
    code = exit_code(summary)
    if returncode not in (0, 1):
        print(f"racelab races: pytest exited {returncode}; its log ends:\n"
              + "".join(log.read_text().splitlines(True)[-30:]), file=sys.stderr)
        return 2
    if code:
        bad = [f"{row['race']} {row['mode']}: {verdict(row)[1]}" for row in summary if not verdict(row)[0]]
        print(f"racelab races: FAILED — {'; '.join(bad)}. Replay a run with "
              f"`racelab races --only RACE --mode MODE --seed SEED --seeds 1`; pytest log {log}", file=sys.stderr)
    else:
        print("racelab races: every buggy run reproduced its race; no fixed run showed an anomaly.")
    return code
