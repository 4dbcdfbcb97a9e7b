"""Benchmark the import flow in one run, fixed vs every fix off: import server time, time-to-display, PDF fan-out.

Both apps are served on this machine in turn, with the same database kind and
workers, and measured the same way; the figures that matter are the ratios in
the last column, since absolute times move with the machine's load. Writes
``reports/latest/bench.json``.
"""
import json
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from racelab.locustfiles._payloads import upload
from racelab.serving import DB_CHOICES, served_app

DEADLINE = 60.0  # seconds an import may take to show before it counts as never shown


def add_arguments(parser):
    parser.add_argument("--db", default="postgres", help=f"{' or '.join(DB_CHOICES)} or a URL (default postgres).")
    parser.add_argument("--workers", type=int, default=3, help="rq worker processes per served app (default 3).")
    parser.add_argument("--uploads", type=int, default=100, help="Concurrent small uploads (default 100).")
    parser.add_argument("--repeat", type=int, default=5, help="Repetitions of each 1000-task import (default 5).")
    parser.add_argument("--out", default="reports/latest/bench.json", help="Where to write the figures.")


class Client:
    """A small HTTP client of the import API for one served app."""

    def __init__(self, app):
        self.url, self.session = app.url, requests.Session()
        self.session.headers["Authorization"] = f"Token {app.token}"

    def project(self):
        return self.session.post(f"{self.url}/api/projects", json={"title": "bench"}, timeout=30).json()["id"]

    def import_file(self, project, item, mode):
        files = {"file": (item.name, item.content, item.content_type)}
        response = self.session.post(f"{self.url}/api/projects/{project}/import?async={mode}", files=files, timeout=120)
        response.raise_for_status()
        return response.json()

    def finished(self, project, import_id):
        """Return True when the async import ``import_id`` is completed or failed."""
        body = self.session.get(f"{self.url}/api/projects/{project}/imports/{import_id}", timeout=30).json()
        return body["status"] in ("completed", "failed")

    def shown(self, project, file_name, expected):
        """Return True when the project's file list shows ``file_name`` ``completed`` with ``expected`` tasks."""
        rows = self.session.get(f"{self.url}/api/projects/{project}/file-uploads", timeout=30).json()
        row = next((r for r in rows if r["file_name"] == file_name and r["parent"] is None), None)
        return bool(row) and row["status"] == "completed" and row["task_count"] == expected


def import_and_watch(client, project, item):
    """Import ``item`` async; return ``(seconds to display, seconds to a final import status)``, None for never.

    Both modes poll the same two reads — the import's status and the project's
    file list, where the file is found by its name — so that their costs compare.
    Displayed means the file shows ``completed`` with its task count; where a fix
    the reader relies on is off (R6's cache), it may never show, and the bench
    says so. Polls back off from 20 ms to 0.5 s, like the load suite's users.
    """
    started, pause = time.monotonic(), 0.02
    body = client.import_file(project, item, "true")
    displayed = finished = None
    while time.monotonic() - started < DEADLINE and (displayed is None or finished is None):
        if displayed is None and client.shown(project, item.name, item.expected_tasks):
            displayed = time.monotonic() - started
        if finished is None and client.finished(project, body["import"]):
            finished = time.monotonic() - started
        time.sleep(pause)  # a poll, backing off like a browser's
        pause = min(pause * 2, 0.5)
    return displayed, finished


def percentiles(label, values):
    """Return ``{label_p50_ms, label_p95_ms, label_max_ms}`` of the values that are not None."""
    done = sorted(v for v in values if v is not None)
    figures = {f"{label}_done": f"{len(done)}/{len(values)}"}
    if done:
        figures[f"{label}_p50_ms"] = round(1000 * done[len(done) // 2], 1)
        figures[f"{label}_p95_ms"] = round(1000 * done[min(len(done) - 1, int(0.95 * len(done)))], 1)
        figures[f"{label}_max_ms"] = round(1000 * done[-1], 1)
    return figures


def measure(app, uploads, repeat):
    """Return the figures of one served app."""
    client = Client(app)
    project = client.project()
    figures = {}
    for kind in ("json", "csv"):
        durations = [client.import_file(project, upload(kind, 1000), "false")["duration"] for _ in range(repeat)]
        figures[f"{kind}1000_server_ms"] = round(1000 * statistics.median(durations), 1)
    with ThreadPoolExecutor(max_workers=uploads) as pool:
        # One project per upload, like 100 people each importing into their own.
        watched = list(pool.map(lambda i: (lambda c: import_and_watch(c, c.project(), upload("csv", 5)))(Client(app)),
                                range(uploads)))
    figures.update(percentiles("upload_display", [displayed for displayed, _ in watched]))
    figures.update(percentiles("upload_final", [finished for _, finished in watched]))
    displayed, finished = import_and_watch(client, project, upload("pdf", 50))
    figures["pdf50_display_s"] = round(displayed, 2) if displayed is not None else None
    figures["pdf50_final_s"] = round(finished, 2) if finished is not None else None
    return figures


def run(args):
    results = {}
    for label, fixes in (("fixed", "all"), ("buggy", "none")):
        print(f"racelab bench: serving the app with fixes={fixes} ...", flush=True)
        with served_app(db=args.db, workers=args.workers, fixes=fixes, log=subprocess.DEVNULL) as app:
            results[label] = measure(app, args.uploads, args.repeat)
    print(f"\n{'figure':<24}{'fixed':>12}{'fixes off':>12}{'fixed/off':>11}")
    for key in results["fixed"]:
        fixed, buggy = results["fixed"][key], results["buggy"].get(key)
        ratio = f"{fixed / buggy:.2f}" if isinstance(fixed, float) and isinstance(buggy, float) and buggy else "-"
        print(f"{key:<24}{fixed!s:>12}{buggy!s:>12}{ratio:>11}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n(ratios < 1: the fixed flow is faster; 'None' or n/m shown: imports that never showed within {DEADLINE:.0f}s)\n"
          f"Figures: {out}")
    return 0
