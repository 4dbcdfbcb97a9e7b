"""Write the four report files for a results folder and return the verdict.

This is the one entry point the command line (``python -m reports``,
``racelab load``, ``racelab run``) needs. It reads result files and writes
``summary.md``, ``summary.json``, ``junit.xml`` and ``report.html`` into the
output folder; it never exits the process and never prints.
"""
import json
from pathlib import Path

from racelab.reports.gates import Verdict, evaluate, evaluate_races, load_limits
from racelab.reports.html import render_html
from racelab.reports.junit import render_junit
from racelab.reports.results import load_results
from racelab.reports.summary import render_markdown, summary_json

OUTPUT_FILES = ("summary.md", "summary.json", "junit.xml", "report.html")


def write_report(results_dir, out_dir, pyproject=None):
    """Judge ``results_dir`` against the gates and write the report files into ``out_dir``.

    Return ``(verdict, results)``. Raises :class:`~racelab.reports.results.ResultsError`
    when the folder holds no result files and
    :class:`~racelab.reports.gates.GateConfigError` for a bad gate table or races row;
    in both cases nothing is written.
    """
    results = load_results(results_dir)
    verdict = Verdict(evaluate(results.metrics, load_limits(pyproject)), evaluate_races(results.races))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(render_markdown(results, verdict), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary_json(results, verdict), indent=1, default=str) + "\n",
                                      encoding="utf-8")
    (out / "junit.xml").write_text(render_junit(verdict), encoding="utf-8")
    (out / "report.html").write_text(render_html(results, verdict), encoding="utf-8")
    return verdict, results
