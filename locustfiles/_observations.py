"""Record what the load users observe, in Locust's own stats where they fit.

Anomalies are Locust failures of request type ``ANOMALY`` named after the
anomaly, and time-to-display is a request of type ``METRIC``: both land in
Locust's stats, CSV files and web UI with no extra plumbing. What Locust's
stats cannot hold (counters for the gates, one-time notices about what the
target lacks, the time-to-display histogram) is kept in :class:`Observations`,
shipped from workers to the master with Locust's ``report_to_master`` /
``worker_report`` events, and written once, by the master (or the local
runner), next to the ``--csv`` files as ``<prefix>_racelab.json``. Nothing is
written by workers, and nothing at all without ``--csv``.
"""
import json
import logging
import os
import time
from collections import Counter

logger = logging.getLogger("racelab.load")

ANOMALY = "ANOMALY"
METRIC = "METRIC"
DISPLAY_METRIC = "time_to_display"
RESULTS_SUFFIX = "_racelab.json"
HEALTH_SUFFIX = "_health.json"
HEALTH_PATH = "/api/health/import-flow"


class Anomaly(Exception):
    """A consistency check failed; the message says what was expected and what was seen."""


class Observations:
    """Count what the users of one process saw; merge other processes' counts in."""

    def __init__(self):
        self.counters = Counter()
        self.statuses = Counter()
        self.notices = []
        self.sent = []
        self._unsent = {"counters": Counter(), "statuses": Counter(), "notices": [], "sent": []}

    def record_sent(self, project, file_upload_ids, tasks):
        """Keep that an import the target accepted made ``file_upload_ids`` in ``project`` from ``tasks`` tasks.

        Read after the run by the completeness check, which counts what those files show.
        """
        entry = {"project": project, "file_upload_ids": list(file_upload_ids), "tasks": tasks}
        self.sent.append(entry)
        self._unsent["sent"].append(entry)

    def count(self, key, n=1):
        """Add ``n`` to counter ``key`` (``checks``, ``jobs_completed``, ``stuck_files``, …)."""
        self.counters[key] += n
        self._unsent["counters"][key] += n

    def status(self, status, n=1):
        """Count a file upload seen in final state ``status`` (``None`` when the target has none)."""
        key = status or "unreported"
        self.statuses[key] += n
        self._unsent["statuses"][key] += n

    def notice(self, text):
        """Log ``text`` once per process and keep it for the report; repeat calls do nothing."""
        if text in self.notices:
            return False
        self.notices.append(text)
        self._unsent["notices"].append(text)
        logger.warning("racelab: %s", text)
        return True

    def drain(self):
        """Return what was recorded since the last drain, as plain JSON data, and forget it."""
        data = {key: (dict(value) if isinstance(value, Counter) else list(value)) for key, value in self._unsent.items()}
        self._unsent = {"counters": Counter(), "statuses": Counter(), "notices": [], "sent": []}
        return data

    def merge(self, data):
        """Add a worker's drained data; does not re-log its notices."""
        self.counters.update(data.get("counters", {}))
        self.statuses.update(data.get("statuses", {}))
        self.notices.extend(n for n in data.get("notices", []) if n not in self.notices)
        self.sent.extend(data.get("sent", []))

    def as_json(self, environment):
        """Return the ``_racelab.json`` document, with Locust's time-to-display buckets."""
        histograms = {}
        for (name, method), entry in environment.stats.entries.items():
            if method == METRIC and name.startswith(DISPLAY_METRIC):
                histograms[name] = {str(ms): n for ms, n in sorted(entry.response_times.items())}
        return {
            "format": "racelab-load/1",
            "written_at": time.time(),
            "host": environment.host,
            "counters": dict(self.counters),
            "file_upload_statuses": dict(self.statuses),
            "notices": list(self.notices),
            "time_to_display_histograms_ms": histograms,
            "sent": list(self.sent),
        }


def observations(environment):
    """Return the environment's :class:`Observations`, creating it on first use."""
    found = getattr(environment, "racelab_observations", None)
    if found is None:
        found = environment.racelab_observations = Observations()
    return found


def record_anomaly(environment, name, detail):
    """Fire a failed ``ANOMALY`` request named ``name``; the detail becomes its error text."""
    environment.events.request.fire(
        request_type=ANOMALY, name=name, response_time=0, response_length=0,
        exception=Anomaly(detail), context={},
    )


def record_display(environment, seconds, name=DISPLAY_METRIC):
    """Fire a successful ``METRIC`` request whose response time is the time to display."""
    environment.events.request.fire(
        request_type=METRIC, name=name, response_time=seconds * 1000.0, response_length=0,
        exception=None, context={},
    )


def install(environment):
    """Wire worker → master shipping and the result file into ``environment``'s events.

    Call once per environment (the locustfiles do it from Locust's ``init``
    event). The result file is written on ``quitting`` by every runner except
    a worker, and only when Locust was given ``--csv PREFIX``.
    """
    from locust.runners import WorkerRunner

    obs = observations(environment)

    def on_report_to_master(client_id, data, **kwargs):
        data["racelab"] = obs.drain()

    def on_worker_report(client_id, data, **kwargs):
        obs.merge(data.get("racelab") or {})

    def on_test_stop(environment, **kwargs):
        if isinstance(environment.runner, WorkerRunner):
            return
        prefix = getattr(environment.parsed_options, "csv_prefix", None)
        if prefix:
            _save_health(environment, prefix + HEALTH_SUFFIX)

    def on_quitting(environment, **kwargs):
        if isinstance(environment.runner, WorkerRunner):
            return
        prefix = getattr(environment.parsed_options, "csv_prefix", None)
        if prefix:
            with open(prefix + RESULTS_SUFFIX, "w") as out:
                json.dump(obs.as_json(environment), out, indent=1, sort_keys=True)
            _write_final_csv(environment, prefix)

    environment.events.report_to_master.add_listener(on_report_to_master)
    environment.events.worker_report.add_listener(on_worker_report)
    environment.events.test_stop.add_listener(on_test_stop)
    environment.events.quitting.add_listener(on_quitting)


def _write_final_csv(environment, prefix):
    """Rewrite ``_stats.csv`` and ``_failures.csv`` with the final stats, using Locust's own writer.

    Locust rewrites them once a second and not at exit, so the last second of a
    run would be missing. Each file is replaced, not edited: Locust's writer
    keeps its handle on the old file, so neither write spoils the other.
    """
    import csv

    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (("_stats.csv", writer.requests_csv), ("_failures.csv", writer.failures_csv)):
        partial = f"{prefix}{suffix}.partial"
        with open(partial, "w", newline="") as out:
            write(csv.writer(out))
        os.replace(partial, prefix + suffix)


def _save_health(environment, path):
    """Save the target's import-flow health body to ``path``; skip quietly if it has none."""
    import requests

    from racelab.locustfiles._settings import load_settings

    settings = load_settings(environment)
    try:
        response = requests.get(
            environment.host.rstrip("/") + HEALTH_PATH, timeout=10,
            headers={"Authorization": f"Token {settings.token}"} if settings.token else {},
        )
    except requests.RequestException as exc:
        logger.warning("racelab: could not read %s after the run (%s); the report has no health data", HEALTH_PATH, exc)
        return
    if response.status_code not in (200, 503):  # 503 carries the body of an unhealthy flow
        logger.info("racelab: %s answered %s; the report has no health data", HEALTH_PATH, response.status_code)
        return
    with open(path, "w") as out:
        out.write(response.text)
