"""Write small, realistic result folders for the report tests: Locust CSVs, load JSON, health, races.

Headers are Locust 2.x's own (``--csv PREFIX --csv-full-history``); values are made up.
"""
import csv
import json

PCTS = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
STATS_HEADER = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s", *PCTS]
HISTORY_HEADER = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *PCTS,
                  "Total Request Count", "Total Failure Count", "Total Median Response Time",
                  "Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
                  "Total Average Content Size"]
FAILURES_HEADER = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]


def stats_row(kind, name, requests, failures=0, p50=10, p95=40, p99=80, maximum=120):
    """Return one ``_stats.csv`` row."""
    pcts = [p50, p50, p50, p95, p95, p95, p99, p99, maximum, maximum, maximum]
    return [kind, name, requests, failures, p50, p50 * 1.2, 1, maximum, 50, 10.0, 0.0, *pcts]


def write_load(folder, prefix="load", http=1000, http_failures=0, anomalies=None, display_p95=40,
               display_count=200, histogram=None, counters=None, statuses=None, notices=()):
    """Write one Locust prefix (stats, history, failures) and its ``_racelab.json``; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    anomalies = anomalies or {}
    rows = [stats_row("POST", "/api/projects/[id]/import [sync]", http, http_failures),
            stats_row("METRIC", "time_to_display", display_count, p95=display_p95, p99=display_p95 + 10,
                      maximum=display_p95 + 20)]
    rows += [stats_row("ANOMALY", name, count, count, 0, 0, 0, 0) for name, count in anomalies.items()]
    total = http + display_count + sum(anomalies.values())
    rows.append(stats_row("", "Aggregated", total, http_failures + sum(anomalies.values())))
    _csv(folder / f"{prefix}_stats.csv", STATS_HEADER, rows)
    history = []
    for second in range(5):
        for kind, name in (("POST", "/api/projects/[id]/import [sync]"), ("METRIC", "time_to_display"),
                           ("", "Aggregated")):
            values = [0] * len(PCTS) if second == 0 else [10 + second, 12, 14, 16, 20, display_p95, 50, 60, 70, 70, 70]
            history.append([1700000000 + second, 10, kind, name, 5.0, 0.0, *values, 10 * second, 0, 10, 11, 1, 70, 40])
    _csv(folder / f"{prefix}_stats_history.csv", HISTORY_HEADER, history)
    failures = [["ANOMALY", name, f"Anomaly('json5: #{i} x.json show 6 tasks, sent 5')", count, "", ""]
                for i, (name, count) in enumerate(anomalies.items())]
    if http_failures:
        failures.append(["POST", "/api/projects/[id]/import [sync]", "CatchResponseError('answered 500')",
                         http_failures, "", ""])
    _csv(folder / f"{prefix}_failures.csv", FAILURES_HEADER, failures)
    load = {"counters": counters if counters is not None else {"checks": display_count, "jobs_completed": 50},
            "file_upload_statuses": statuses or {"completed": display_count}, "notices": list(notices),
            "time_to_display_histograms_ms": {"time_to_display": histogram} if histogram else {}}
    (folder / f"{prefix}_racelab.json").write_text(json.dumps(load))
    return folder


def write_json(folder, name, data):
    """Write ``data`` as ``folder/name`` and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))
    return folder


def race(name, mode, anomalies=0, reproduced=0.0, runs=20, example=""):
    """Return one ``races.json`` row."""
    return {"race": name, "mode": mode, "runs": runs, "anomalies": anomalies, "reproduced_pct": reproduced,
            "example": example}


def _csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
