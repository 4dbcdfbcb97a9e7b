"""Render a verdict as ``summary.md`` (a CI job summary) and ``summary.json`` (for machines).

Both are pure functions of :class:`~racelab.reports.results.Results` and
:class:`~racelab.reports.gates.Verdict`; nothing is written here.
"""
from racelab.reports.gates import FAIL, GATES_BY_KEY, PASS, format_value

ICONS = {PASS: "✅", FAIL: "❌", "skipped": "⚪"}


def headline(verdict):
    """Return the one-line outcome, e.g. ``❌ 2 of 6 gates failed; 1 of 4 races failed``."""
    gates_failed = sum(r.status == FAIL for r in verdict.gates)
    races_failed = sum(r.status == FAIL for r in verdict.races)
    if verdict.passed:
        skipped = sum(r.status == "skipped" for r in verdict.gates)
        faulted = sum(r.status == "skipped" and r.source.startswith("not judged under") for r in verdict.gates)
        note = (f" ({skipped - faulted} skipped: no data)" if skipped - faulted else "") + \
            (f" ({faulted} speed gates not judged under faults)" if faulted else "")
        ran = [r for r in verdict.races if r.status == PASS]
        races = f"; {len(ran)} race rows as expected" if ran else ""
        not_run = len(verdict.races) - len(ran)
        return f"✅ all gates passed{note}{races}" + (f" ({not_run} not run)" if not_run else "")
    parts = [f"{gates_failed} of {len(verdict.gates)} gates failed"] if gates_failed else []
    parts += [f"{races_failed} of {len(verdict.races)} races failed"] if races_failed else []
    return "❌ " + "; ".join(parts)


SERVER_TIME_MEANING = ("The served app's own time per request (its access log), without the wait for a free worker "
                       "or for the load machine to read the answer.")


BUSY_HOST_PCT = 75  # above this, requests queue for CPU and latency measures the machine
BUSY_WITH_THE_APP = ("Requests waited for CPU, so time to display measured the machine as much as the app: compare "
                     "the server time, or serve the app on a machine of its own and point racelab load --host at it.")
BUSY_WITHOUT_THE_APP = ("The load generator was short of CPU, so time to display measured it as much as the app: "
                        "run Locust on a bigger machine, or as a master and workers.")


def load_line(results, verdict):
    """Return what load the figures were measured under, and how busy the load machine's CPU was.

    When the time-to-display gate failed on a busy machine, say so and what to do.
    """
    load, cpu = results.metrics["load"], results.metrics.get("host_cpu") or {}
    line = (f"Under load: {load['users']} users for {load['seconds']} s, {load['requests_per_s']:g} HTTP requests/s, "
            f"{load['imports']} imports ({load['imports_per_s']:g}/s, {load['imports_async']} async).")
    if cpu.get("busy_pct") is None:
        return line
    line += f" The load machine's {cpu['cores']} cores were {cpu['busy_pct']:g} % busy."
    display = verdict.gate("time_to_display_p95_ms")
    if display and display.status == FAIL and cpu["busy_pct"] >= BUSY_HOST_PCT:
        line += " " + (BUSY_WITH_THE_APP if cpu.get("app_here", True) else BUSY_WITHOUT_THE_APP)
    return line


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(results, verdict):
    """Return the Markdown summary: gates, races, anomalies, time to display, notices."""
    lines = [f"## racelab gates — {headline(verdict)}", "",
             "| | gate | measured | limit | from |", "|---|---|---|---|---|"]
    for r in verdict.gates:
        measured = format_value(r.measured, r.gate.unit) if r.measured is not None else "no data"
        lines.append(f"| {ICONS[r.status]} | `{r.expression}` | {measured} | "
                     f"{format_value(r.limit, r.gate.unit)} | {_cell(r.source)} |")
    if results.metrics.get("load"):
        lines += ["", load_line(results, verdict)]
    if verdict.races:
        lines += ["", "### Races", "", "| | race | mode | runs | anomalies | reproduced | example |",
                  "|---|---|---|---|---|---|---|"]
        for r in verdict.races:
            lines.append(f"| {ICONS[r.status]} | {_cell(r.race)} | {r.mode} | {r.runs} | {r.anomalies} | "
                         f"{format_value(r.reproduced_pct, '%')} | {_cell((r.example or r.skip_reason)[:160])} |")
    if results.explore:
        lines += ["", "### Exploration: each race found from its actors alone", "", EXPLORE_MEANING, "",
                  "| race | db | workers | strategy | mode | seeds | found | runs to find: median | max | runs/s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {' | '.join(_cell(cell) for cell in explore_cells(row))} |" for row in results.explore]
    by_name = results.metrics.get("anomalies_by_name") or {}
    if by_name:
        examples = first_examples(results.failures)
        lines += ["", "### Anomalies", "", "| anomaly | count | first example |", "|---|---|---|"]
        lines += [f"| `{name}` | {count} | {_cell(examples.get(name, '')[:200])} |" for name, count in by_name.items()]
    display = results.metrics.get("time_to_display") or {}
    if display:
        lines += ["", "### Time to display", "", "| metric | imports | p50 | p95 | p99 | max |", "|---|---|---|---|---|---|"]
        lines += [f"| `{name}` | {f['count']} | {f['p50']:.0f} ms | {f['p95']:.0f} ms | {f['p99']:.0f} ms | "
                  f"{f['max']:.0f} ms |" for name, f in display.items()]
    database = database_rows(results.metrics)
    if database:
        lines += ["", "### Database", "", DATABASE_MEANING, "", "| figure | measured | seed plan's target |",
                  "|---|---|---|"]
        lines += [f"| {figure} | {_cell(measured)} | {target} |" for figure, measured, target in database]
    if results.faults:
        lines += ["", "### Faults (nemesis)", "", "| kind | pids | from | to | seconds | recovered |", "|---|---|---|---|---|---|"]
        lines += [f"| {cells[0]} | {cells[1]} | {cells[2]} s | {cells[3]} s | {cells[4]} | {_cell(cells[5])} |"
                  for cells in fault_rows(results)]
    completeness = results.metrics.get("completeness") or {}
    if completeness.get("examples"):
        lines += ["", "### Completeness", ""] + [f"- {_cell(example)}" for example in completeness["examples"][:20]]
    server = results.metrics.get("server_time") or {}
    if server:
        lines += ["", "### Server time", "", SERVER_TIME_MEANING, "",
                  "| endpoint | requests | p50 | p95 |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {f['count']} | {f['p50']:.0f} ms | {f['p95']:.0f} ms |" for name, f in server.items()]
    if results.notices:
        lines += ["", "### Notices", ""] + [f"- {n}" for n in results.notices]
    lines += ["", f"<sub>read: {', '.join(results.files)}</sub>", ""]
    return "\n".join(lines)


DATABASE_MEANING = ("Commit durations and SQLite's lock waits are timed in the app's processes; deadlocks, "
                    "PostgreSQL's lock waits and connections come from the server during the run.")


def fault_rows(results):
    """Return ``(kind, pids, from s, to s, seconds, recovered)`` per fault, times since the load's first sample."""
    history = results.history.get(("", "Aggregated")) or []
    origin = history[0]["t"] if history else min(fault["start"] for fault in results.faults)
    return [(fault["kind"], _pids(fault.get("pids") or []),
             f"{fault['start'] - origin:.1f}", f"{fault['end'] - origin:.1f}", f"{fault['end'] - fault['start']:.1f}",
             _recovered(fault))
            for fault in results.faults]


def _recovered(fault):
    """Say how long the app took to recover from ``fault`` (see :func:`racelab.reports.faults.recovery_metrics`)."""
    if "recovered_s" not in fault:
        return "not probed"
    if fault["recovered_s"] is not None:
        return f"in {fault['recovered_s']:g} s"
    cut = ", then the next fault came" if fault.get("cut_short") else ""
    return f"not after {fault.get('probed_s', 0):g} s{cut}: {fault.get('not_recovered')}"


def _pids(pids):
    if not pids:
        return "none alive"
    return ", ".join(map(str, pids)) if len(pids) <= 3 else f"{pids[0]} and {len(pids) - 1} more of its processes"


def _per_hour(rate):
    return f"{rate:,.0f}/h" if rate >= 10 else f"{rate:.2g}/h"


def database_rows(metrics):
    """Return ``[(figure, measured, seed plan's target)]`` for the report's database table; ``[]`` without data."""
    details = metrics.get("database") or {}
    rows = []
    if commit := details.get("commit"):
        rows.append(("commit duration", f"p50 {commit['p50']:g} ms · p95 {commit['p95']:g} ms · max {commit['max']:g} ms "
                     f"({commit['count']} commits)", "< 100 ms p95"))
    if metrics.get("deadlocks") is not None:
        rows.append(("deadlocks", str(metrics["deadlocks"]), "0 (rollback above 10/hour)"))
    if waits := details.get("lock_waits"):
        locked = f", {waits['locked_errors']} 'database is locked'" if waits.get("locked_errors") else ""
        rows.append(("lock waits of 100 ms or more", f"{waits['count']} ({_per_hour(metrics['lock_waits_per_hour'])}), "
                     f"longest {waits['longest_ms']:.0f} ms{locked}", "< 5 locks/hour"))
    if connections := details.get("connections"):
        apps = ", ".join(f"{name} {count}" for name, count in connections["peak_by_application"].items())
        rows.append(("connections", f"peak {connections['peak']} ({metrics['connections_peak_pct']:.3g} %), mean "
                     f"{connections['mean']:g} of max_connections {connections['max_connections']}; peak by "
                     f"application: {apps}", "< 80 % of max_connections"))
    rows += [(GATES_BY_KEY[key].label if key in GATES_BY_KEY else key, f"not measured: {why}", "")
             for key, why in details.get("not_measured", {}).items() if metrics.get(key) is None]
    return rows


EXPLORE_MEANING = ("No ordering and no delay: a seeded scheduler picks who runs at every point, for at most "
                   "the budget of runs. Buggy (fix off) must be found, fixed must show nothing in the whole budget. "
                   "pos is ours; random picks uniformly at the same points; free runs the actors freely with "
                   "random sleeps, the naive baseline.")


def explore_cells(row):
    """Return the table cells of one ``racelab explore`` row, in EXPLORE_MEANING's table's order."""
    if row.get("skipped"):
        return [row["race"], row["db"], row.get("workers", ""), row["strategy"], row["mode"], 0, "-",
                f"skipped: {row['skipped'][:80]}", "", ""]
    found = f"{row['found']} of {row['seeds']}" if row["mode"] == "buggy" else f"{row['found']} in {row['runs']} runs"
    median = "-" if row.get("median_runs") is None else f"{row['median_runs']:g}"
    most = "-" if row.get("max_runs") is None else f"{row['max_runs']:g}"
    return [row["race"], row["db"], row.get("workers", ""), row["strategy"], row["mode"], row["seeds"], found,
            median, most, f"{row['runs_per_second']:g}"]


def first_examples(failures):
    """Return ``{anomaly name: its most frequent error text}`` from Locust's failure rows."""
    examples = {}
    for row in failures:
        if row.get("Method") == "ANOMALY":
            text = str(row.get("Error") or "")
            if text.startswith("Anomaly(") and text.endswith(")"):
                text = text[len("Anomaly("):-1].strip("'\"")
            examples.setdefault(row.get("Name"), text)
    return examples


def summary_json(results, verdict):
    """Return the JSON-ready summary: outcome, every gate and race, the metrics and what was read."""
    return {
        "passed": verdict.passed,
        "headline": headline(verdict),
        "breaches": verdict.breaches(),
        "gates": [{"key": r.gate.key, "expression": r.expression, "status": r.status, "measured": r.measured,
                   "limit": r.limit, "unit": r.gate.unit, "source": r.source, "meaning": r.gate.meaning}
                  for r in verdict.gates],
        "races": [{"race": r.race, "mode": r.mode, "runs": r.runs, "anomalies": r.anomalies,
                   "reproduced_pct": r.reproduced_pct, "example": r.example, "status": r.status, "rule": r.rule}
                  for r in verdict.races],
        "metrics": results.metrics,
        "file_upload_statuses": results.statuses,
        "notices": results.notices,
        "faults": results.faults,
        "files": results.files,
    }
