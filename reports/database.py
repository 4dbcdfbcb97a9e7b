"""Read a load run's database figures: commit durations, deadlocks, lock waits and connections.

Two sources in the results folder, either may be missing:

- ``commit_log/commits-<pid>.jsonl``: what the app's own processes saw
  (:mod:`racelab.harness.commit_log`): each commit's duration, and on SQLite each
  wait of 100 ms or more for the write lock and each "database is locked" error;
- ``database.json``: what the server said during the run (:mod:`racelab.dbwatch`):
  ``max_connections``, connection samples per application, lock waits and the
  deadlock count before and after, and ``not_measured``: why a figure is absent.

:func:`database_metrics` turns them into the four gate keys (``None`` when not
measured) and the details the report draws. Nothing here imports the app or a driver.
"""
import json
from collections import Counter
from pathlib import Path

COMMIT_LOG_DIR, DATABASE_JSON = "commit_log", "database.json"
TIMELINE_BUCKETS = 60  # points of the commit-duration chart, at most
SEED_LOCK_WAITS_PER_HOUR = 5


def database_metrics(server, records, percentile):
    """Return ``{gate key: value}``, ``"database"`` (details) and ``"sources"``.

    ``server`` is the content of ``database.json`` (or None), ``records`` those of
    the commit logs (:func:`read_commit_logs`); ``percentile(buckets, fraction)`` is
    the report's percentile over ``{value: count}``.
    """
    server = server or {}
    not_measured = dict(server.get("not_measured") or {})
    commits = [r for r in records if "commit_ms" in r]
    span = _span(server, records)
    details = {"vendor": server.get("vendor") or next((r["vendor"] for r in commits), None),
               "seconds": round(span, 1) if span else None, "not_measured": not_measured}
    metrics, sources = dict.fromkeys(("commit_p95_ms", "deadlocks", "lock_waits_per_hour", "connections_peak_pct")), {}

    if commits:
        buckets = Counter(round(r["commit_ms"], 1) for r in commits)
        details["commit"] = {"count": len(commits), "p50": percentile(buckets, 0.5),
                             "p95": percentile(buckets, 0.95), "max": max(buckets)}
        details["commit_timeline"] = _commit_timeline(commits, percentile)
        metrics["commit_p95_ms"] = details["commit"]["p95"]
        sources["commit_p95_ms"] = f"{len(commits)} commits in the app's processes"
        not_measured.pop("commit_p95_ms", None)
    elif records or server:
        not_measured.setdefault("commit_p95_ms", "no commit was logged by the app's processes")

    deadlocks = server.get("deadlocks") or {}
    waits = server.get("lock_waits") or {}
    if "after" in deadlocks or "deadlocks_logged" in waits:
        counted = deadlocks["after"] - deadlocks.get("before", 0) if "after" in deadlocks else 0
        metrics["deadlocks"] = max(counted, waits.get("deadlocks_logged", 0))
        sources["deadlocks"] = "pg_stat_database" + (" and the server log" if "deadlocks_logged" in waits else "")

    app_waits = [r for r in records if "lock_wait_ms" in r]
    locked = [r for r in records if "locked_error" in r]
    if (waits or app_waits or locked or details["vendor"] == "sqlite") and span:
        count = int(waits.get("count", 0)) + len(app_waits) + len(locked)
        longest = max([waits.get("longest_ms", 0.0), *(r["lock_wait_ms"] for r in app_waits)])
        details["lock_waits"] = {"count": count, "longest_ms": longest, "locked_errors": len(locked),
                                 "source": waits.get("source") or "the app's SQLite connections (BEGIN IMMEDIATE)",
                                 "logged": waits.get("logged", [])}
        metrics["lock_waits_per_hour"] = count * 3600.0 / span
        sources["lock_waits_per_hour"] = (f"{count} wait(s) of 100 ms or more in {span:.0f} s, from "
                                          f"{details['lock_waits']['source']}"
                                          + (f" ({len(locked)} 'database is locked' errors)" if locked else "")
                                          + first_wait(details["lock_waits"]["logged"]))
        not_measured.pop("lock_waits_per_hour", None)

    samples = server.get("samples") or []
    if samples and server.get("max_connections"):
        details["connections"] = _connections(samples, server["max_connections"])
        metrics["connections_peak_pct"] = 100.0 * details["connections"]["peak"] / server["max_connections"]
        sources["connections_peak_pct"] = (f"peak {details['connections']['peak']} of max_connections "
                                           f"{server['max_connections']}, {len(samples)} samples")
    for key, why in not_measured.items():
        if metrics.get(key) is None:
            sources[key] = f"not measured: {why}"
    return {**metrics, "database": details, "sources": sources}


def _span(server, records):
    if server.get("started") and server.get("ended"):
        return max(server["ended"] - server["started"], 1.0)
    times = [r["t"] for r in records]
    return max(max(times) - min(times), 1.0) if times else None


def _commit_timeline(commits, percentile):
    """Return ``[{"t", "p50", "p95", "max"}]``, one point per time bucket of the run."""
    first, last = min(r["t"] for r in commits), max(r["t"] for r in commits)
    width = max((last - first) / TIMELINE_BUCKETS, 1.0)
    buckets = {}
    for r in commits:
        buckets.setdefault(min(int((r["t"] - first) // width), TIMELINE_BUCKETS - 1), Counter())[round(r["commit_ms"], 1)] += 1
    return [{"t": first + index * width, "p50": percentile(counts, 0.5), "p95": percentile(counts, 0.95),
             "max": max(counts)} for index, counts in sorted(buckets.items())]


def _connections(samples, max_connections):
    totals = [sum(s["connections"].values()) for s in samples]
    by_app = {}
    for sample in samples:
        for name, count in sample["connections"].items():
            by_app[name] = max(by_app.get(name, 0), count)
    return {"peak": max(totals), "mean": round(sum(totals) / len(totals), 1), "max_connections": max_connections,
            "peak_by_application": dict(sorted(by_app.items())),
            "waiting_peak": max(s.get("waiting", 0) for s in samples),
            "timeline": [{"t": s["t"], "total": total, **s["connections"]} for s, total in zip(samples, totals)]}


def read_commit_logs(directory, files):
    """Return every record of the ``commits-*.jsonl`` logs in ``directory``; ``files`` collects their names."""
    records = []
    for path in sorted(Path(directory).glob("commits-*.jsonl")):
        with open(path) as handle:
            # A process killed mid-write leaves at most a torn last line: skip it, keep the rest.
            for line in handle:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        files.append(f"{COMMIT_LOG_DIR}/{path.name}")
    return records


def first_wait(logged):
    """Return ``"; the first: STATEMENT (CONTEXT)"`` of the server log's first lock wait, ``""`` without one."""
    if not logged:
        return ""
    wait = logged[0]
    context = f" ({wait['context']})" if wait.get("context") else ""
    return f"; the first: {(wait.get('statement') or wait['wait'])[:160]}{context}"

