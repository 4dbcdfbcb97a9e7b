"""Sum up a fault campaign: one row per run of ``make load-faults``, from each run's ``summary.json``.

A campaign folder holds one report folder per fault kind (``reports/latest/faults/KIND``),
each written by ``racelab load --nemesis KIND``. :func:`campaign_table` reads them
and returns a Markdown table: the load each run carried, what its users were told
(failed requests, retries), what the completeness check found, and how long the app
took to recover. Nothing here judges: each run's own gates did.
"""
import json
from pathlib import Path

COLUMNS = ("fault", "held", "imports", "failed requests", "retries", "anomalies", "not final", "wrong counts",
           "duplicates", "total mismatches", "caught", "recovered", "verdict")


def campaign_table(directory):
    """Return the Markdown table of the runs under ``directory`` (by name); raise FileNotFoundError without any."""
    runs = sorted(path.parent for path in Path(directory).glob("*/summary.json"))
    if not runs:
        raise FileNotFoundError(f"no run in {directory}: expected KIND/summary.json, as `make load-faults` writes")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for run in runs:
        lines.append("| " + " | ".join(str(cell) for cell in _row(run)) + " |")
    return "\n".join(lines) + "\n"


def _row(run):
    summary = json.loads((run / "summary.json").read_text())
    measured = {gate["key"]: gate["measured"] for gate in summary["gates"]}
    counters = _counters(run / "results")
    faults = summary.get("faults") or []
    held = ", ".join(f"{fault['end'] - fault['start']:.0f} s" for fault in faults) or "no fault"
    recovered = ", ".join("—" if "recovered_s" not in fault else f"{fault['recovered_s']:g} s"
                          if fault["recovered_s"] is not None else f"not in {fault.get('probed_s', 0):g} s"
                          for fault in faults)
    imports = counters.get("imports_async", 0) + counters.get("imports_sync", 0)
    return (run.name, held, f"{imports} ({counters.get('imports_async', 0)} async)",
            _figure(measured.get("error_rate_pct"), "%"), counters.get("import_retries", 0),
            measured.get("anomalies"), measured.get("imports_not_final"), measured.get("wrong_task_counts"),
            measured.get("duplicate_tasks"), measured.get("project_total_mismatches"),
            ", ".join(str(fault.get("caught", "—")) for fault in faults), recovered,
            "pass" if summary["passed"] else "FAIL")


def _counters(results):
    counters = {}
    for path in results.glob("*_racelab.json"):
        for name, count in (json.loads(path.read_text()).get("counters") or {}).items():
            counters[name] = counters.get(name, 0) + count
    return counters


def _figure(value, unit):
    return "n/a" if value is None else f"{value:.2g}{unit}"
