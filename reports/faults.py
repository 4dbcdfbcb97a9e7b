"""Read the fault timeline of a load run with a nemesis: ``faults.jsonl``, one fault a line.

Each line is ``{"kind", "role", "pids", "signal", "start", "end"}`` (epoch seconds),
written by :mod:`racelab.nemesis` when the fault ended. The report shades each
fault on the latency charts and lists them in a table. A torn last line (a run
killed mid-write) is skipped; nothing here signals a process.
"""
import json
from pathlib import Path

FAULTS_JSONL = "faults.jsonl"


def read_faults(directory, files):
    """Return the faults in ``directory/faults.jsonl`` by start time (``[]`` without the file); ``files`` collects its name."""
    path = Path(directory) / FAULTS_JSONL
    if not path.is_file():
        return []
    faults = []
    with open(path) as handle:
        for line in handle:
            try:
                fault = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(fault, dict) and {"kind", "start", "end"} <= fault.keys():
                faults.append(fault)
    files.append(FAULTS_JSONL)
    return sorted(faults, key=lambda fault: fault["start"])
