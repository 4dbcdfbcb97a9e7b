"""Judge a run's metrics and race rows against the gates kept in ``pyproject.toml``.

The limits live under ``[tool.racelab.gates]``; every gate is one expression in
the k6 spirit (``time_to_display.p95 < 500ms``) over one key of the metrics
dict built by :mod:`racelab.reports.results`. A gate whose metric is absent (a races-only
run has no load figures) is *skipped*, not passed and not failed. Nothing here
reads result files or renders anything.
"""
import math
try:
    import tomllib
except ImportError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib
from dataclasses import dataclass
from pathlib import Path

PASS, FAIL, SKIP = "pass", "fail", "skipped"
RACE_MODES = ("fixed", "buggy")
OPERATORS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


class GateConfigError(ValueError):
    """The ``[tool.racelab.gates]`` table or a races row cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Gate:
    """One gate: the metric key (also its ``pyproject.toml`` key), how it reads, its comparison."""

    key: str
    label: str
    op: str
    unit: str
    default: float
    meaning: str

    def expression(self, limit):
        """Return the gate as read by a person, e.g. ``job_success > 99%`` or ``anomalies == 0``."""
        op = self.op
        if (op == "<=" and limit == 0) or (op == ">=" and limit == 100 and self.unit == "%"):
            op = "=="  # nothing can be below 0 or above 100 %: say it the plain way
        return f"{self.label} {op} {format_value(limit, self.unit)}"


# The one list of gates, in the order reports show them. Keys are the pyproject keys.
GATES = (
    Gate("time_to_display_p95_ms", "time_to_display.p95", "<", "ms", 500,
         "95th percentile from upload start to its tasks visible with the right count (small files)"),
    Gate("anomalies", "anomalies", "<=", "", 0, "consistency anomalies recorded by the load users"),
    Gate("error_rate_pct", "error_rate", "<", "%", 0.1, "failed HTTP requests out of all HTTP requests"),
    Gate("job_success_pct", "job_success", ">", "%", 99, "background import jobs that completed"),
    Gate("stuck_files", "stuck_files", "<=", "", 0, "file uploads still pending or processing after the run"),
    Gate("task_count_accuracy_pct", "task_count_accuracy", ">=", "%", 100,
         "task counts that were right on the first read after the import reported done"),
    Gate("commit_p95_ms", "commit_duration.p95", "<", "ms", 100,
         "95th percentile of the time a transaction's COMMIT took, timed in the app's processes"),
    Gate("deadlocks", "deadlocks", "<=", "", 0, "deadlocks the database detected during the run"),
    Gate("lock_waits_per_hour", "lock_waits", "<", "/h", 5,
         "waits of 100 ms or more for a lock, per hour of the run (a 60 s run allows none)"),
    Gate("connections_peak_pct", "connections.peak", "<", "%", 80,
         "the most connections the database server held at once, of its max_connections"),
    Gate("imports_not_final", "imports_not_final", "<=", "", 0,
         "imports and files not completed or failed within the stuck timeout + 60 s after the run"),
    Gate("wrong_task_counts", "wrong_task_counts", "<=", "", 0,
         "completed imports whose files show another task count than the load users sent"),
    Gate("project_total_mismatches", "project_total_mismatches", "<=", "", 0,
         "projects whose task total is not the sum of their completed files (a partial write)"),
    Gate("duplicate_tasks", "duplicate_tasks", "<=", "", 0,
         "tasks stored twice with the same content in one project (a job that ran twice)"),
    Gate("fault_recovery_s", "fault_recovery", "<=", "s", 30,
         "seconds from a fault's end until the health check answers 200 and every import it caught is final"),
)
GATES_BY_KEY = {gate.key: gate for gate in GATES}


@dataclass
class GateResult:
    """A gate's verdict: the measured value (``None`` when absent) against its limit."""

    gate: Gate
    limit: float
    measured: float | None
    status: str
    source: str = ""

    @property
    def expression(self):
        return self.gate.expression(self.limit)

    def message(self):
        """Return one line for a person: the gate, the measured value and the limit."""
        if self.status == SKIP:
            return f"gate {self.expression}: skipped, {self.source or 'no data'} ({self.gate.meaning})"
        word = "passed" if self.status == PASS else "FAILED"
        return (f"gate {self.expression} {word}: measured {format_value(self.measured, self.gate.unit)}, "
                f"limit {format_value(self.limit, self.gate.unit)}" + (f" — {self.source}" if self.source else ""))


@dataclass
class RaceResult:
    """A race row's verdict: a fixed race must show no anomaly, a buggy one must reproduce every run.

    A row with no run (``runs`` 0, e.g. a race that needs PostgreSQL on SQLite)
    is skipped, with the row's ``skip_reason``.
    """

    race: str
    mode: str
    runs: int
    anomalies: int
    reproduced_pct: float
    example: str
    status: str
    skip_reason: str = ""

    @property
    def rule(self):
        return "anomalies == 0" if self.mode == "fixed" else "reproduced == 100%"

    def message(self):
        """Return one line for a person: the race, its mode, what was measured and what is required."""
        if self.status == SKIP:
            return f"race {self.race} [{self.mode}]: skipped, no run ({self.skip_reason or 'no reason given'})"
        measured = (f"{self.anomalies} anomalies in {self.runs} runs" if self.mode == "fixed"
                    else f"reproduced in {format_value(self.reproduced_pct, '%')} of {self.runs} runs")
        word = "passed" if self.status == PASS else "FAILED"
        return f"race {self.race} [{self.mode}] {word}: {measured}, required {self.rule}"


def load_limits(pyproject=None):
    """Return ``{gate key: limit}`` from ``[tool.racelab.gates]``, defaults for keys not set.

    ``pyproject`` is a path; without one, the nearest ``pyproject.toml`` from the
    current directory upwards is read, and the defaults apply when none has the
    table. Raises :class:`GateConfigError` for an unknown key or a non-number.
    """
    limits = {gate.key: gate.default for gate in GATES}
    path = Path(pyproject) if pyproject else _find_pyproject()
    if path is None:
        return limits
    with open(path, "rb") as handle:
        table = tomllib.load(handle).get("tool", {}).get("racelab", {}).get("gates", {})
    for key, value in table.items():
        if key not in GATES_BY_KEY:
            raise GateConfigError(f"{path}: [tool.racelab.gates] has unknown key {key!r}; "
                                  f"the gates are {', '.join(GATES_BY_KEY)}. Remove or rename it.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GateConfigError(f"{path}: [tool.racelab.gates] {key} = {value!r} is not a number; "
                                  f"write it like {key} = {GATES_BY_KEY[key].default}.")
        limits[key] = float(value)
    return limits


def _find_pyproject():
    for folder in (Path.cwd(), *Path.cwd().parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def evaluate(metrics, limits):
    """Return a :class:`GateResult` per gate, in ``GATES`` order; a missing metric is skipped.

    So is a gate named in ``metrics["not_judged"]`` (key -> why), with its measured value kept.
    """
    sources, not_judged = metrics.get("sources", {}), metrics.get("not_judged", {})
    results = []
    for gate in GATES:
        measured = metrics.get(gate.key)
        if gate.key in not_judged:
            results.append(GateResult(gate, limits[gate.key], measured, SKIP, not_judged[gate.key]))
            continue
        if measured is None:
            status = SKIP
        else:
            status = PASS if OPERATORS[gate.op](measured, limits[gate.key]) else FAIL
        results.append(GateResult(gate, limits[gate.key], measured, status, sources.get(gate.key, "")))
    return results


def evaluate_races(rows):
    """Return a :class:`RaceResult` per races row; raise :class:`GateConfigError` for a malformed row."""
    results = []
    for number, row in enumerate(rows, start=1):
        try:
            race, mode = str(row["race"]), str(row["mode"])
            runs, anomalies = int(row.get("runs", 0)), int(row.get("anomalies", 0))
            reproduced = float(row.get("reproduced_pct", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise GateConfigError(f"races row {number} ({row!r}) is malformed ({exc}); each row needs "
                                  "race, mode, runs, anomalies, reproduced_pct and example.") from None
        if mode not in RACE_MODES:
            raise GateConfigError(f"races row {number} ({race}) has mode {mode!r}; use one of {', '.join(RACE_MODES)}.")
        ok = anomalies == 0 if mode == "fixed" else reproduced >= 100.0
        status = SKIP if runs == 0 and anomalies == 0 else PASS if ok else FAIL
        results.append(RaceResult(race, mode, runs, anomalies, reproduced, str(row.get("example") or ""),
                                  status, str(row.get("skip_reason") or "")))
    return results


def format_value(value, unit):
    """Return ``value`` with its unit for people: ``612ms``, ``0.25%``, ``3``; ``n/a`` for ``None``."""
    if value is None:
        return "n/a"
    if not isinstance(value, float):
        return f"{value}{unit}"
    text = _trim(f"{value:.2f}")
    if float(text) != value and text in ("0", "100"):
        text = _trim(f"{value:.6f}")  # never round a breach into its limit (99.999% is not 100%)
    return text + unit


def _trim(number):
    return number.rstrip("0").rstrip(".") if "." in number else number


@dataclass
class Verdict:
    """All gate and race results of one report; it fails when any of them failed."""

    gates: list
    races: list

    @property
    def passed(self):
        return not self.failed

    @property
    def failed(self):
        """Return the failed gate and race results, gates first."""
        return [r for r in [*self.gates, *self.races] if r.status == FAIL]

    def gate(self, key):
        """Return the result of the gate ``key`` (e.g. ``time_to_display_p95_ms``), or None if it was not judged."""
        return next((r for r in self.gates if r.gate.key == key), None)

    def breaches(self):
        """Return one line per failure, naming the gate (or race), the measured value and the limit."""
        return [result.message() for result in self.failed]
