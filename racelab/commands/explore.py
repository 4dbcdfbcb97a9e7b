"""Find each race of the catalogue from its actors alone: no ordering, no delay, a seeded scheduler and a budget.

Runs the exploring variant of each scenario (``test_rN_explored`` in ``scenarios/``) under
``racelab.harness.explorer``: buggy mode must find an anomaly within ``--budget`` runs, fixed
mode none in the whole budget. With ``--seeds K`` each race is explored K times from different
seeds, and the table gives the runs to the first anomaly (median and max) and the wall time;
``--strategy all`` puts ours (pos) beside uniform random at the same points and the naive
baseline (free: the actors run freely, with random sleeps). Writes ``reports/latest/explore.json``
and exits 1 when pos misses a race or finds one with every fix on (a baseline missing is a
figure, not a failure).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from racelab import checkout

ROOT = checkout.require("racelab explore")
from racelab.commands.races import follow, load_results, parse_races  # noqa: E402 - after require()
from scenarios.common import EXPLORE_RESULTS_ENV, MODES, RESULTS_ENV, child_env, pytest_command  # noqa: E402

DEFAULT_OUTPUT = ROOT / "reports" / "latest" / "explore.json"
STRATEGIES = ("pos", "random", "pct", "free")
OURS = "pos"


def add_arguments(parser):
    parser.add_argument("--only", default="", metavar="R1,R3", help="Comma list of races (default: all of R1-R12).")
    parser.add_argument("--mode", choices=("fixed", "buggy", "both"), default="both",
                        help="Explore with the fix off (buggy: must find it), on (fixed: must find nothing) or both.")
    parser.add_argument("--db", default="sqlite", metavar="sqlite|postgres|both|URL",
                        help="Database(s) to explore on (default: sqlite).")
    parser.add_argument("--budget", type=int, default=200, metavar="N", help="Runs per exploration (default: 200).")
    parser.add_argument("--seeds", type=int, default=1, metavar="K",
                        help="Explorations per race, mode and database, from seeds S, S+1, ... (default: 1).")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="First seed (default: a random one).")
    parser.add_argument("--strategy", default=OURS, metavar="|".join(STRATEGIES + ("all",)),
                        help="pos (ours, default), random, pct, free (the naive baseline), or all of them.")
    parser.add_argument("--on", choices=("threads", "processes", "both"), default="both",
                        help="Explore with RQ workers as threads, as real worker processes, or both (default: both).")
    parser.add_argument("--confirm", type=int, default=2, metavar="K",
                        help="Shrink each finding and replay it K times (default: 2); 0 measures runs to find only.")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="pytest-xdist processes (default: 2).")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"Where to write the figures (default: {DEFAULT_OUTPUT.relative_to(ROOT)}).")


def summarise(rows, skipped):
    """Return one row per race, database, strategy and mode with the exploration figures."""
    groups = {}
    for row in rows:
        groups.setdefault((row["race"], row["db"], row.get("workers", "threads"), row["strategy"], row["mode"]),
                          []).append(row)
    summary = []
    for (race, db, workers, strategy, mode), runs in sorted(groups.items(),
                                                             key=lambda item: (int(item[0][0][1:]), *item[0][1:])):
        found = [row["found_at"] for row in runs if row["found_at"]]
        to_find = sorted(row["found_at"] or float("inf") for row in runs)
        summary.append({
            "race": race, "db": db, "workers": workers, "strategy": strategy, "mode": mode, "seeds": len(runs),
            "found": len(found),
            "median_runs": _number(statistics.median(to_find)), "max_runs": _number(to_find[-1]),
            "runs": sum(row["runs"] for row in runs), "seconds": round(sum(row["seconds"] for row in runs), 2),
            "runs_per_second": round(statistics.median(row["runs_per_second"] for row in runs), 2),
            "switches": sorted({row["switches"] for row in runs if row["switches"] is not None}),
            "replays": [sum(row["replays"][i] for row in runs if row["replays"]) for i in (0, 1)],
            "example": next((row["anomaly"] for row in runs if row["anomaly"]), None),
            "replay": next((row["replay"] for row in runs if row["replay"]), None),
            "budget": runs[0]["budget"],
        })
    summary += [{"race": race, "db": db, "workers": "threads", "strategy": strategy, "mode": mode, "seeds": 0,
                 "skipped": reason}
                for (race, db, strategy, mode), reason in sorted(skipped.items())]
    return summary


def _number(value):
    return None if value == float("inf") else value


def verdict(row):
    """Return ``(ok, word)``: ours must find every buggy race and nothing with the fixes on."""
    if row.get("skipped"):
        return True, "skipped"
    if row["mode"] == "fixed":
        return (row["found"] == 0), ("clean" if row["found"] == 0 else "ANOMALY")
    if row["found"] == row["seeds"]:
        return True, "found"
    return row["strategy"] != OURS, ("MISSED" if row["strategy"] == OURS else "missed")


def format_table(summary):
    """Return the summary as an aligned text table."""
    head = (f"{'race':<4} {'db':<10} {'workers':<9} {'strategy':<8} {'mode':<6} {'seeds':>5} {'found':>5} "
            f"{'median':>6} {'max':>5} "
            f"{'runs':>6} {'runs/s':>7} {'switches':<10} verdict")
    lines = [head, "-" * len(head)]
    for row in summary:
        if row.get("skipped"):
            lines.append(f"{row['race']:<4} {row['db']:<10} {row['workers']:<9} {row['strategy']:<8} {row['mode']:<6} "
                         f"skipped: {row['skipped']}")
            continue
        median = "-" if row["median_runs"] is None else f"{row['median_runs']:g}"
        most = "-" if row["max_runs"] is None else f"{row['max_runs']:g}"
        lines.append(f"{row['race']:<4} {row['db']:<10} {row['workers']:<9} {row['strategy']:<8} {row['mode']:<6} "
                     f"{row['seeds']:>5} "
                     f"{row['found']:>5} {median:>6} {most:>5} {row['runs']:>6} {row['runs_per_second']:>7g} "
                     f"{','.join(map(str, row['switches'])) or '-':<10} {verdict(row)[1]}")
    return "\n".join(lines)


def merge_into_races_json(path, summary):
    """Put ``summary`` under "explore" in ``races.json`` beside ``racelab races``' rows, which stay as they are."""
    existing = json.loads(path.read_text()) if path.exists() else []
    races = existing.get("races", []) if isinstance(existing, dict) else existing
    path.write_text(json.dumps({"races": races, "explore": summary}, indent=2) + "\n")


def run(args):
    try:
        races = parse_races(args.only)
    except ValueError as exc:
        print(f"racelab explore: {exc}", file=sys.stderr)
        return 2
    strategies = STRATEGIES if args.strategy == "all" else (args.strategy,)
    if any(strategy not in STRATEGIES for strategy in strategies) or args.budget < 1 or args.seeds < 1:
        print(f"racelab explore: --strategy is one of {', '.join(STRATEGIES)} or all; --budget and --seeds are at "
              "least 1.", file=sys.stderr)
        return 2
    modes = list(MODES) if args.mode == "both" else [args.mode]
    dbs = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    rows, skipped, code = [], {}, 0
    for db in dbs:
        for strategy in strategies:
            found, returncode = _explore(races, modes, db, strategy, args)
            rows += found[0]
            skipped.update({(race, _vendor(db), strategy, mode): reason for race, mode, reason in found[1]})
            code = code or (2 if returncode not in (0, 1) else 0)
    summary = summarise(rows, skipped)
    print()
    print(format_table(summary))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    races_json = args.output.parent / "races.json"
    merge_into_races_json(races_json, summary)
    print(f"\nWrote {args.output}, and the figures into {races_json} (the report's exploration table)")
    bad = [f"{row['race']} {row['db']} {row['mode']}: {verdict(row)[1]}" for row in summary if not verdict(row)[0]]
    if bad:
        print(f"racelab explore: FAILED — {'; '.join(bad)}.", file=sys.stderr)
    return code or (1 if bad else 0)


def _explore(races, modes, db, strategy, args):
    work = Path(tempfile.mkdtemp(prefix="racelab-explore-"))
    results, outcomes, log = work / "explore.jsonl", work / "races.jsonl", work / "pytest.log"
    (work / "home").mkdir()
    extra = ["--race-budget", str(args.budget), "--race-strategy", strategy, "--race-confirm", str(args.confirm),
             "--timeout", str(max(300, 5 * args.budget))]  # an exploration lasts as many runs as its budget
    argv = pytest_command(races, modes, seeds=args.seeds, seed=args.seed, db=db, workers=args.workers, extra=extra,
                          explored=True, on=None if args.on == "both" else args.on)
    env = child_env(**{EXPLORE_RESULTS_ENV: str(results), RESULTS_ENV: str(outcomes), "RACELAB_HOME": str(work / "home"),
                       "RACELAB_LOG_LEVEL": "WARNING"})
    expected = len(races) * len(modes) * args.seeds
    print(f"racelab explore: {', '.join(races)} × {'/'.join(modes)} × {args.seeds} seed(s) on {db}, strategy "
          f"{strategy}, budget {args.budget}\n  pytest: {' '.join(argv[1:])}", flush=True)
    returncode = follow(argv, env, results, log, lambda rows: (
        f"{rows[-1]['race']:<3} {rows[-1]['mode']:<5} seed {rows[-1]['seed']}: "
        + (f"found in run {rows[-1]['found_at']}" if rows[-1]["found_at"] else f"nothing in {rows[-1]['runs']} runs")),
        expected)
    skips = [(row["race"], row["mode"], row["skipped"]) for row in load_results(outcomes) if row.get("skipped")]
    if returncode not in (0, 1):
        print(f"racelab explore: pytest exited {returncode}; its log ends:\n"
              + "".join(log.read_text().splitlines(True)[-30:]), file=sys.stderr)
    return (load_results(results), skips), returncode


def _vendor(db):
    return "postgresql" if db.startswith("postgres") else "sqlite"
