"""Read a results folder into the metrics dict the gates judge, plus what the charts draw.

A results folder holds any of:

- Locust's files from ``--csv PREFIX --csv-full-history`` (``PREFIX_stats.csv``,
  ``PREFIX_stats_history.csv``, ``PREFIX_failures.csv``), one prefix or several
  (one per scenario run): their figures are added up;
- ``PREFIX_racelab.json``, written by the load suite beside them (counters,
  notices, the exact time-to-display histogram);
- ``health.json`` or ``PREFIX_health.json``: the body of ``GET /api/health/import-flow``;
- ``races.json``: a list of ``{"race", "mode", "runs", "anomalies", "reproduced_pct", "example"}``,
  or ``{"races": [...], "explore": [...]}`` with ``racelab explore``'s figures (one row per race,
  database, workers, strategy and mode: seeds, found, median and max runs to the first anomaly);
- ``server_access.log``: the served app's access log (``METHOD PATH STATUS MILLISECONDS`` a line),
  for the server's own time per endpoint;
- ``database.json`` and ``commit_log/``: the database's figures during the run
  (:mod:`racelab.reports.database`);
- ``faults.jsonl``: the nemesis's faults (:mod:`racelab.reports.faults`), and
  ``completeness.json``: the check after the run (:mod:`racelab.reports.completeness`).

Only these files are read; nothing imports Locust (it would monkey-patch this
process), the load suite or the service. Missing keys are tolerated: a metric
nobody measured is ``None``, and its gate is skipped.
"""
import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from racelab.reports.completeness import COMPLETENESS_JSON, completeness_metrics
from racelab.reports.faults import read_faults, recovery_metrics
from racelab.reports.database import COMMIT_LOG_DIR, DATABASE_JSON, database_metrics, read_commit_logs

STATS, HISTORY, FAILURES = "_stats.csv", "_stats_history.csv", "_failures.csv"
LOAD_JSON, HEALTH_JSON, RACES_JSON, SERVER_LOG = "_racelab.json", "health.json", "races.json", "server_access.log"
HOST_CPU_JSON = "host_cpu.json"  # by racelab load: the load machine's "cores" and "busy_pct", and "app_here"
ANOMALY, METRIC, DISPLAY = "ANOMALY", "METRIC", "time_to_display"
PERCENTILES = ("50%", "95%", "99%")


class ResultsError(Exception):
    """The results folder has nothing to report on, or a file in it cannot be read."""


@dataclass
class Results:
    """Everything the renderers need from one results folder."""

    metrics: dict
    history: dict = field(default_factory=dict)     # (type, name) -> [{"t", "users", "50%", "95%", "99%", "rps"}]
    histograms: dict = field(default_factory=dict)  # time_to_display name -> {ms: count}
    statuses: dict = field(default_factory=dict)    # "load users" / "server" -> {status: count}
    stats: list = field(default_factory=list)       # Locust stats rows, all prefixes
    failures: list = field(default_factory=list)    # Locust failure rows, most frequent first
    races: list = field(default_factory=list)
    explore: list = field(default_factory=list)     # racelab explore's rows
    notices: list = field(default_factory=list)
    faults: list = field(default_factory=list)      # [{"kind", "role", "pids", "signal", "start", "end"}]
    files: list = field(default_factory=list)


def load_results(directory):
    """Return the :class:`Results` of ``directory``; raise :class:`ResultsError` if it holds none."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ResultsError(f"results folder {folder} does not exist: run `racelab load` (or locust with "
                           f"--csv {folder}/load --csv-full-history) first, or pass --results DIR")
    prefixes = sorted(str(p)[: -len(STATS)] for p in folder.glob("*" + STATS))
    res = Results(metrics={})
    for prefix in prefixes:
        res.stats += _read_csv(prefix + STATS, res.files)
        res.failures += _read_csv(prefix + FAILURES, res.files, required=False)
        _read_history(prefix + HISTORY, res)
    loads = [_read_json(prefix + LOAD_JSON, res.files) for prefix in prefixes]
    loads = [data for data in loads if data]
    health_files = sorted(folder.glob("*_" + HEALTH_JSON), key=lambda p: p.stat().st_mtime)
    explicit = folder / HEALTH_JSON
    health_path = explicit if explicit.is_file() else (health_files[-1] if health_files else None)
    health = _read_json(health_path, res.files) if health_path else None
    races = _read_json(folder / RACES_JSON, res.files)
    res.races = races.get("races", []) if isinstance(races, dict) else (races or [])
    res.explore = races.get("explore", []) if isinstance(races, dict) else []
    database = database_metrics(_read_json(folder / DATABASE_JSON, res.files),
                                read_commit_logs(folder / COMMIT_LOG_DIR, res.files), percentile)
    res.faults = read_faults(folder, res.files)
    completeness = completeness_metrics(_read_json(folder / COMPLETENESS_JSON, res.files))
    if not res.files:
        raise ResultsError(f"no result files in {folder}: expected Locust's *{STATS} (locust --csv "
                           f"{folder}/load --csv-full-history), {HEALTH_JSON}, {RACES_JSON} or {DATABASE_JSON}")
    res.failures.sort(key=lambda row: -_num(row.get("Occurrences")))
    res.notices = sorted({n for data in loads for n in data.get("notices", [])})
    res.histograms = _merge_histograms(loads)
    res.statuses = _statuses(loads, health)
    res.metrics = build_metrics(res.stats, loads, health, res.histograms, len(prefixes))
    res.metrics["load"] = load_level(res.history, res.metrics)
    res.metrics["server_time"] = server_times(folder / SERVER_LOG, res.files)
    res.metrics["host_cpu"] = _read_json(folder / HOST_CPU_JSON, res.files)
    res.metrics["sources"].update(database.pop("sources"))
    res.metrics.update(database)
    res.metrics["sources"].update(completeness.pop("sources"))
    res.metrics.update(completeness)
    recovery = recovery_metrics(res.faults)
    res.metrics["sources"].update(recovery.pop("sources"))
    res.metrics.update(recovery)
    if res.faults:
        _exempt_from_faults(res.metrics, len(res.faults))
    return res


# A fault held for seconds makes these slow or failed by design: a nemesis run is judged on what
# must survive faults (anomalies, counts, stuck files, completeness), not on speed.
FAULT_SENSITIVE = ("time_to_display_p95_ms", "error_rate_pct", "commit_p95_ms", "lock_waits_per_hour")


def _exempt_from_faults(metrics, faults):
    """Mark the fault-sensitive gates not judged; their figures stay in the report as measured."""
    metrics["not_judged"] = {key: f"not judged under {faults} injected fault(s), which slow or fail requests by design"
                             for key in FAULT_SENSITIVE if metrics.get(key) is not None}


def server_times(path, files):
    """Return ``{"GET /api/projects/[id]": {"count", "p50", "p95"}}`` from an access log; ``{}`` without one.

    The server's own clock: beside Locust's figures, it tells a slow app from a
    load machine too busy to read its answers in time.
    """
    buckets = {}  # endpoint -> {ms: count}
    try:
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 4 and parts[3].isdigit():
                    endpoint = f"{parts[0]} {re.sub(r'/[0-9]+', '/[id]', parts[1])}"
                    buckets.setdefault(endpoint, Counter())[int(parts[3])] += 1
    except FileNotFoundError:
        return {}
    files.append(Path(path).name)
    return {endpoint: {"count": counts.total(), "p50": percentile(counts, 0.5), "p95": percentile(counts, 0.95)}
            for endpoint, counts in sorted(buckets.items(), key=lambda item: -item[1].total())}


def load_level(history, metrics):
    """Return what load the figures were measured under: peak users, seconds, requests and imports per second.

    ``None`` without Locust's history (a race-only report).
    """
    points = history.get(("", "Aggregated")) or []
    if len(points) < 2:
        return None
    seconds = max(points[-1]["t"] - points[0]["t"], 1.0)
    counters = metrics.get("load_counters", {})
    imports = counters.get("imports_sync", 0) + counters.get("imports_async", 0)
    return {"users": int(max(p["users"] for p in points)), "seconds": round(seconds),
            "requests_per_s": round(metrics["requests"] / seconds, 1), "imports": imports,
            "imports_per_s": round(imports / seconds, 1), "imports_async": counters.get("imports_async", 0)}


def build_metrics(stats, loads, health, histograms, runs=1):
    """Return the flat metrics dict: the gate keys (``None`` when unmeasured) and their details."""
    rows = [r for r in stats if r.get("Name") != "Aggregated"]
    http = [r for r in rows if r.get("Type") not in (ANOMALY, METRIC)]
    requests, failures = sum(_num(r["Request Count"]) for r in http), sum(_num(r["Failure Count"]) for r in http)
    by_name = {}
    for r in rows:
        if r.get("Type") == ANOMALY:
            by_name[r["Name"]] = by_name.get(r["Name"], 0) + int(_num(r["Failure Count"]))
    counters = {}
    for data in loads:
        for key, value in data.get("counters", {}).items():
            counters[key] = counters.get(key, 0) + value
    metrics = {
        "anomalies": sum(by_name.values()) if stats else None,
        "anomalies_by_name": dict(sorted(by_name.items(), key=lambda kv: -kv[1])),
        "requests": int(requests),
        "http_failures": int(failures),
        "error_rate_pct": 100.0 * failures / requests if requests else None,
        "time_to_display": _display_figures(rows, histograms),
        "load_counters": counters,
        "sources": {},
    }
    display = metrics["time_to_display"].get(DISPLAY)
    metrics["time_to_display_p95_ms"] = display["p95"] if display else None
    if display:
        metrics["sources"]["time_to_display_p95_ms"] = (
            f"{display['count']} imports" + (", worst p95 of several runs" if display.get("approximate") else ""))
    if requests:
        metrics["sources"]["error_rate_pct"] = f"{failures:g} of {requests:g} HTTP requests"
    if stats:
        metrics["sources"]["anomalies"] = "load users"
    _combine(metrics, "task_count_accuracy_pct", min, *_accuracy(counters, health))
    _combine(metrics, "job_success_pct", min, *_job_success(counters, health))
    _combine(metrics, "stuck_files", max, *_stuck(counters, health))
    metrics["health"] = health.get("metrics", {}) if isinstance(health, dict) else {}
    metrics["health_status"] = health.get("status") if isinstance(health, dict) else None
    metrics["runs"] = runs
    return metrics


def _combine(metrics, key, pick, *candidates):
    found = [(value, label) for value, label in candidates if value is not None]
    metrics[key] = pick(value for value, _ in found) if found else None
    if found:
        labels = [label for _, label in found]
        metrics["sources"][key] = labels[0] if len(labels) == 1 else "worst of " + " and ".join(labels)


def _accuracy(counters, health):
    checks = counters.get("checks", 0)
    client = (100.0 * (checks - counters.get("count_mismatches", 0)) / checks, f"load users ({checks} checks)") \
        if checks else (None, "")
    value = _health_value(health, "task_count_accuracy")
    if isinstance(value, str):
        value = 100.0 if value == "pass" else 0.0 if value == "fail" else None
    return client, (_pct(value), "health endpoint")


def _job_success(counters, health):
    done, failed, stuck = (counters.get(k, 0) for k in ("jobs_completed", "jobs_failed", "jobs_stuck"))
    total = done + failed + stuck
    client = (100.0 * done / total, f"load users ({total} async imports)") if total else (None, "")
    return client, (_pct(_health_value(health, "rq_job_success_rate")), "health endpoint (RQ registries)")


def _stuck(counters, health):
    client = None
    if "checks" in counters or "jobs_completed" in counters:
        client = counters.get("stuck_files", 0) + counters.get("jobs_stuck", 0)
    value = _health_value(health, "stuck_files")
    return (client, "load users"), (None if value is None else int(_num(value)), "health endpoint")


def _health_value(health, key):
    if not isinstance(health, dict):
        return None
    figures = health.get("metrics") if isinstance(health.get("metrics"), dict) else {}
    checks = health.get("checks") if isinstance(health.get("checks"), dict) else {}
    value = figures.get(key)
    return value if value is not None else checks.get(key)


def _pct(value):
    """Return a rate as a percentage: fractions (<= 1) are scaled, percentages kept."""
    if value is None or isinstance(value, str):
        return None
    return float(value) * 100.0 if float(value) <= 1.0 else float(value)


def _display_figures(rows, histograms):
    figures = {}
    for r in rows:
        if r.get("Type") != METRIC or not r["Name"].startswith(DISPLAY) or not _num(r["Request Count"]):
            continue
        name, count = r["Name"], int(_num(r["Request Count"]))
        fig = {"count": count, "p50": _num(r["50%"]), "p95": _num(r["95%"]), "p99": _num(r["99%"]),
               "max": _num(r["Max Response Time"]), "avg": _num(r["Average Response Time"])}
        if name in figures:  # several runs: exact from the merged histogram below, else the worst
            old = figures[name]
            fig = {k: (old[k] + fig[k] if k == "count" else max(old[k], fig[k])) for k in fig}
            fig["approximate"] = True
        figures[name] = fig
    for name, buckets in histograms.items():
        if name in figures and sum(buckets.values()) == figures[name]["count"]:
            figures[name].update({f"p{int(q * 100)}": percentile(buckets, q) for q in (0.5, 0.95, 0.99)})
            figures[name].pop("approximate", None)
    return figures


def percentile(buckets, fraction):
    """Return the ``fraction`` percentile of ``{ms: count}`` buckets, computed the way Locust does.

    Hand-written because importing Locust here would monkey-patch this process.
    """
    total = sum(buckets.values())
    keep = int(total * fraction)
    processed = 0
    for ms in sorted(buckets, reverse=True):
        processed += buckets[ms]
        if total - processed <= keep:
            return float(ms)
    return 0.0


def _merge_histograms(loads):
    merged = {}
    for data in loads:
        for name, buckets in data.get("time_to_display_histograms_ms", {}).items():
            target = merged.setdefault(name, {})
            for ms, count in buckets.items():
                target[int(float(ms))] = target.get(int(float(ms)), 0) + int(count)
    return merged


def _statuses(loads, health):
    found = {}
    client = {}
    for data in loads:
        for status, count in data.get("file_upload_statuses", {}).items():
            client[status] = client.get(status, 0) + count
    if client:
        found["load users"] = client
    server = _health_value(health, "status_distribution")
    if isinstance(server, dict) and server:
        found["server"] = {k: int(_num(v)) for k, v in server.items()}
    return found


def _read_history(path, res):
    for row in _read_csv(path, res.files, required=False):
        point = {"t": _num(row.get("Timestamp")), "users": _num(row.get("User Count")),
                 "rps": _num(row.get("Requests/s"))}
        values = {p: _num(row.get(p), None) for p in PERCENTILES}
        if not any(values.values()):  # Locust writes 0 until its rolling window has data
            values = dict.fromkeys(PERCENTILES)
        point.update(values)
        key = (row.get("Type") or "", row.get("Name") or "")
        res.history.setdefault(key, []).append(point)
    for points in res.history.values():
        points.sort(key=lambda p: p["t"])


def _read_csv(path, files, required=True):
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        if required:
            raise ResultsError(f"{path} is missing: rerun locust with --csv") from None
        return []
    files.append(Path(path).name)
    return rows


def _read_json(path, files):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON ({exc}); rewrite or delete it") from None
    files.append(Path(path).name)
    return data


def _num(value, default=0.0):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
