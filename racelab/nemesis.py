"""Inject faults into the served app's own processes during a load run, after Jepsen's nemesis.

:class:`Nemesis` is a context manager around the load: while it is open, a thread
applies one fault every ``every`` seconds, cycling through the kinds asked for, each
held for ``hold`` seconds, on a process picked (seeded) among the app's processes of
that role that are busy (used CPU just before), or among all of them when none is.
Targets come only from ``targets()`` — the pids ``racelab load`` started itself
(:meth:`racelab.serving.ServedApp.pids`) — never from a name on the machine.

Leaving the block stops the thread and resumes (SIGCONT) every process still paused,
also when the load raised. No fault starts that would end after ``deadline``. Each
fault is one line of ``faults.jsonl`` (:data:`~racelab.reports.faults.FAULTS_JSONL`):
``kind``, ``role``, ``pids``, ``signal``, ``start``, ``end`` (epoch seconds), written
when it ends. A kill's ``end`` is the end of the time it was given to recover: the
nemesis restarts nothing (recovering is the app's job).

With a ``probe`` (:class:`racelab.recovery.RecoveryProbe`) each fault's line also
says how long the app took to recover once the fault was over (a pause's end, a
kill's signal) — health 200 and every
import unfinished as it began or ended final: ``recovered_s``, or ``None`` with
``not_recovered`` (why) and ``probed_s`` (how long it was watched: until the next
fault, and ``cut_short`` then, or ``recovery_window`` seconds after the last one).
"""
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

from racelab import proctree
from racelab.reports.faults import FAULTS_JSONL

# kind -> (role, signal, every process of the role?). A paused PostgreSQL is every process of it: a
# stopped postmaster alone would leave its backends serving.
FAULT_KINDS = {
    "kill-worker": ("worker", signal.SIGKILL, False),
    "kill-workers": ("worker", signal.SIGKILL, True),
    "pause-worker": ("worker", signal.SIGSTOP, False),
    "kill-web": ("web", signal.SIGKILL, False),
    "pause-web": ("web", signal.SIGSTOP, False),
    "kill-redis": ("redis", signal.SIGKILL, False),
    "pause-redis": ("redis", signal.SIGSTOP, False),
    "pause-postgres": ("postgres", signal.SIGSTOP, True),
}


class NemesisError(ValueError):
    """A nemesis that cannot run as asked; the message says what to change."""


def parse_kinds(text):
    """Return the fault kinds in the comma-separated ``text``; raise NemesisError for an unknown one."""
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        raise NemesisError(f"--nemesis {text!r}: unknown fault {', '.join(unknown) or '(none given)'}; "
                           f"use a comma-separated list of {', '.join(FAULT_KINDS)}.")
    return kinds


class Nemesis:
    """Apply ``kinds`` in turn to the pids ``targets()`` returns per role, into ``results/faults.jsonl``.

    ``every`` is the seconds from one fault's start to the next, ``hold`` how long
    each lasts (``hold < every``); the first starts after the same calm gap as
    between two, ``every - hold``, ``deadline`` a ``time.monotonic()`` value no fault outlasts.
    A role with no live pid skips its turn, recorded with ``pids: []``.
    """

    def __init__(self, kinds, targets, results, every, hold, deadline, seed=0, probe=None, recovery_window=60.0):
        if not 0 < hold < every:
            raise NemesisError(f"--nemesis-for {hold:g}s must be shorter than --nemesis-every {every:g}s (and above 0): "
                               "a fault ends before the next one starts.")
        self.kinds, self.targets, self.every, self.hold, self.deadline = list(kinds), targets, every, hold, deadline
        self.probe, self.recovery_window = probe, recovery_window
        self.path, self.seed, self.events = Path(results) / FAULTS_JSONL, seed, []
        self._random, self._stop, self._ending, self._thread = random.Random(seed), threading.Event(), threading.Event(), None
        self._paused, self._lock = set(), threading.Lock()

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self._thread = threading.Thread(target=self._run, name="racelab-nemesis", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc_info):
        self._ending.set()  # no fault starts any more; the last one's recovery is still watched, bounded
        if exc_type is None:
            self._thread.join(timeout=self.hold + self.recovery_window + 10)
        self._stop.set()
        self._thread.join(timeout=self.hold + 10)
        self._resume_all()
        return False

    @property
    def finished(self):
        """Return True once the schedule ended by itself (no fault left to start before the deadline) or was stopped."""
        return self._thread is not None and not self._thread.is_alive()

    def _run(self):
        start = time.monotonic() + self.every - self.hold  # the first fault after the same calm gap as between two
        for turn in range(10 ** 6):
            if self._ending.wait(max(0.0, start - time.monotonic())) or time.monotonic() + self.hold > self.deadline:
                return
            next_start = start + self.every
            last = next_start + self.hold > self.deadline
            self._apply(self.kinds[turn % len(self.kinds)], watch_until=next_start, last=last)
            start = next_start

    def _apply(self, kind, watch_until, last):
        role, sig, every_process = FAULT_KINDS[kind]
        live = sorted(self.targets(tree=every_process).get(role, []))
        pids = live if every_process else self._pick_busy(live) if live else []
        in_flight = self.probe.caught() if self.probe is not None else set()  # before the fault, which may stop the database
        event = {"kind": kind, "role": role, "pids": pids, "signal": sig.name, "start": time.time()}
        for pid in pids:
            self._signal(pid, sig)
        self._stop.wait(self.hold)  # a stop request cuts the fault short: the pause ends at once
        self._resume_all()
        event["end"] = time.time()
        if self.probe is not None:
            window_end = time.monotonic() + self.recovery_window
            over = event["start"] if sig == signal.SIGKILL else event["end"]  # a kill is over once sent
            event.update(self._watch_recovery(over, window_end if last else min(watch_until, window_end),
                                              cut_short=not last and watch_until < window_end, in_flight=in_flight))
        self._record(event)

    def _pick_busy(self, live, sample_s=0.3):
        """Return one of ``live``: one that used CPU in the last ``sample_s`` s if any (seeded), so that a fault
        on a worker lands mid-job rather than on one idling in its queue wait; else any of them."""
        if len(live) == 1:
            return live
        before = proctree.processes()
        self._stop.wait(sample_s)
        after = proctree.processes()
        busy = [pid for pid in live if pid in before and pid in after and after[pid][1] > before[pid][1]]
        pool = busy or live
        return [pool[self._random.randrange(len(pool))]]

    def _watch_recovery(self, ended, watch_until, cut_short, in_flight, interval=0.5):
        """Probe until the app recovered or ``watch_until`` (monotonic); return the event's recovery fields.

        The imports the fault caught are those unfinished as it began (``in_flight``) or as it ended.
        """
        caught, reason = in_flight | self.probe.caught(), "not probed"
        while not self._stop.is_set():
            reason = self.probe.pending(caught)
            if reason is None:
                return {"recovered_s": round(time.time() - ended, 1), "caught": len(caught)}
            if time.monotonic() >= watch_until:
                break
            self._stop.wait(interval)  # polling: the app has no "recovered" event to wait on
        return {"recovered_s": None, "not_recovered": reason, "probed_s": round(time.time() - ended, 1),
                "caught": len(caught), "cut_short": cut_short or self._stop.is_set()}

    def _signal(self, pid, sig):
        try:
            with self._lock:
                os.kill(pid, sig)
                if sig == signal.SIGSTOP:
                    self._paused.add(pid)
        except ProcessLookupError:  # it exited since targets() listed it
            pass

    def _resume_all(self):
        with self._lock:
            for pid in sorted(self._paused):
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            self._paused.clear()

    def _record(self, event):
        self.events.append(event)
        with open(self.path, "a") as out:
            out.write(json.dumps(event) + "\n")
