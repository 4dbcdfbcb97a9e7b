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


def recovery_metrics(faults):
    """Return ``{"fault_recovery_s": seconds, "sources": {...}}``: the slowest recovery among ``faults``.

    A fault the app did not recover from while it was watched in full counts as
    the time it was watched (``probed_s``), which is a breach of any sensible
    limit; one whose watch the next fault cut short is left out, and said so.
    ``None`` without a probed fault (a run without a nemesis, or without a probe).
    """
    probed = [fault for fault in faults if "recovered_s" in fault]
    judged = [fault for fault in probed if fault["recovered_s"] is not None or not fault.get("cut_short")]
    if not judged:
        return {"fault_recovery_s": None, "sources": {}}
    worst = max(judged, key=lambda fault: fault["recovered_s"] if fault["recovered_s"] is not None else fault["probed_s"])
    seconds = worst["recovered_s"] if worst["recovered_s"] is not None else worst["probed_s"]
    how = (f"{worst['kind']} at {seconds:g} s" if worst["recovered_s"] is not None else
           f"{worst['kind']} not recovered after {seconds:g} s: {worst.get('not_recovered')}")
    left_out = len(probed) - len(judged)
    source = (f"slowest of {len(judged)} fault(s): {how}"
              + (f"; {left_out} not judged: the next fault came before they recovered" if left_out else ""))
    return {"fault_recovery_s": seconds, "sources": {"fault_recovery_s": source}}
