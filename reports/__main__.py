"""Render the gated report of a results folder: ``python -m reports --results DIR --out reports/latest``.

``python -m reports --campaign DIR`` prints the table of a fault campaign instead
(``make load-faults``: one report folder per fault kind) and writes it to ``DIR/summary.md``.

Exit status: 0 when every gate and race passed (skipped gates do not fail),
1 on a breach — each failed gate is printed with its measured value and its
limit — and 2 when there is nothing to judge or the gate table is wrong. When
``$GITHUB_STEP_SUMMARY`` is set, ``summary.md`` is appended to it.
"""
import argparse
import os
import sys
from pathlib import Path

from racelab.reports.campaign import campaign_table
from racelab.reports.gates import GateConfigError
from racelab.reports.report import OUTPUT_FILES, write_report
from racelab.reports.results import ResultsError
from racelab.reports.summary import headline


def build_parser():
    """Return the command's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--campaign", metavar="DIR",
                        help="Sum up the report folders under DIR, one per fault kind, as `make load-faults` writes.")
    source.add_argument("--results", metavar="DIR",
                        help="Folder with Locust's --csv files (PREFIX_stats.csv, ...), PREFIX_racelab.json, "
                             "health.json and/or races.json.")
    parser.add_argument("--out", default="reports/latest", metavar="DIR",
                        help="Folder for summary.md, summary.json, junit.xml and report.html (default: %(default)s).")
    parser.add_argument("--config", metavar="PYPROJECT",
                        help="pyproject.toml holding [tool.racelab.gates] (default: the nearest one upwards).")
    return parser


def main(argv=None):
    """Write the report and return the exit status (0 pass, 1 breach, 2 nothing to judge)."""
    args = build_parser().parse_args(argv)
    if args.campaign:
        return _campaign(Path(args.campaign))
    try:
        verdict, _ = write_report(args.results, args.out, args.config)
    except (ResultsError, GateConfigError) as exc:
        print(f"reports: {exc}", file=sys.stderr)
        return 2
    print(headline(verdict))
    for result in verdict.gates:
        print(("  " if result.status != "fail" else "✗ ") + result.message())
    for line in verdict.breaches()[sum(r.status == "fail" for r in verdict.gates):]:
        print("✗ " + line)
    out = Path(args.out)
    print(f"report: {out / 'report.html'} ({', '.join(OUTPUT_FILES)})")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write((out / "summary.md").read_text(encoding="utf-8"))
    return 0 if verdict.passed else 1


def _campaign(directory):
    try:
        table = campaign_table(directory)
    except FileNotFoundError as exc:
        print(f"reports: {exc}", file=sys.stderr)
        return 2
    (directory / "summary.md").write_text(table, encoding="utf-8")
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
