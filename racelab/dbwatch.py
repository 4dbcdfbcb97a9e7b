"""Watch the app's PostgreSQL during a load run: connections, lock waits and deadlocks, into ``database.json``.

:class:`DatabaseWatch` is a context manager. Entering it reads the server's
``max_connections`` and deadlock count; while it is open, a thread samples
``pg_stat_activity`` and ``pg_locks`` every ``interval`` seconds (connections per
``application_name``, waiting backends, the longest wait so far); leaving it
reads the deadlock count again and, given the server's log (a server started by
racelab logs every lock wait of :data:`~racelab.harness.commit_log.LOCK_WAIT_MS`
or more: ``log_lock_waits`` and ``deadlock_timeout``), counts the waits and
deadlocks it names and keeps the first waits' statements (:func:`logged_waits`),
which the lock-wait gate names. Without the log, lock waits are counted from the samples,
which miss waits that end between two of them; the file says which.

For SQLite there is no server to ask: the file records only the run's span, and
the app's own processes log what can be seen (:mod:`racelab.harness.commit_log`).
Read by :mod:`racelab.reports.database`; writes nothing else, reads no app code.
"""
import contextlib
import json
import re
import threading
import time
from pathlib import Path

from racelab.harness.commit_log import LOCK_WAIT_MS
from racelab.reports.database import DATABASE_JSON

# For a server racelab starts: each wait of LOCK_WAIT_MS or more logged, with the statement that waited.
SERVER_SETTINGS = {"log_lock_waits": "on", "deadlock_timeout": f"{LOCK_WAIT_MS}ms", "log_min_error_statement": "log"}

SERVER_METRICS = ("deadlocks", "lock_waits_per_hour", "connections_peak_pct")
NOT_GIVEN = "the app's database was not given: pass --db-url postgresql://USER@HOST:PORT/NAME to watch it"
NO_SERVER = "SQLite has no server to count them; its lock waits and 'database is locked' errors come from the app"

_CONNECTIONS = ("SELECT coalesce(nullif(application_name, ''), 'other'), count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1")
_WAITS = ("SELECT pid, extract(epoch FROM now() - waitstart) * 1000 FROM pg_locks "
          "WHERE NOT granted AND waitstart IS NOT NULL")
_LOG_LINE = re.compile(r".*?\[(?P<pid>\d+)\] (?P<level>[A-Z]+):\s+(?P<message>.*)")  # PostgreSQL's '%m [%p] '
_DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


class WatchError(RuntimeError):
    """The database to watch cannot be reached; the message says what to check."""


class DatabaseWatch:
    """Sample the database at ``url`` into ``results/database.json`` while the ``with`` block runs.

    ``url`` is a ``postgres://`` or ``sqlite:///`` URL, or None when the database
    cannot be reached; ``server_log`` the PostgreSQL log file when racelab started
    the server; ``not_measured`` maps report metrics to why the caller cannot
    measure them. The file's ``not_measured`` adds what the database kind rules out.
    """

    def __init__(self, url, results, server_log=None, interval=0.5, not_measured=None):
        self.url, self.path, self.server_log, self.interval = url, Path(results) / DATABASE_JSON, server_log, interval
        self.vendor = None if not url else "sqlite" if url.startswith("sqlite") else "postgresql"
        self.data = {"vendor": self.vendor, "not_measured": dict(not_measured or {})}
        if self.vendor == "sqlite":
            self.data["not_measured"].update(dict.fromkeys(("deadlocks", "connections_peak_pct"), NO_SERVER))
        elif self.vendor is None:
            self.data["not_measured"].update(dict.fromkeys(SERVER_METRICS, NOT_GIVEN))
        self._stop, self._thread, self._log_offset = threading.Event(), None, 0
        self._waits_going, self._waits_ended = {}, []  # pid -> longest wait sampled; waits seen ending

    def __enter__(self):
        self.data["started"] = time.time()
        if self.vendor == "postgresql":
            from racelab.harness.services import postgres_driver

            driver = postgres_driver()
            try:
                self._connection = driver.connect(self.url, application_name="racelab watch", connect_timeout=5)
            except driver.Error as exc:
                raise WatchError(f"cannot watch the database {self.url}: {' '.join(str(exc).split())} — check the URL, that "
                                 "the server is up and that this user may log in (pg_monitor sees every "
                                 "connection).") from None
            self._connection.autocommit = True
            self.data.update(max_connections=int(self._query("SHOW max_connections")[0][0]), samples=[],
                             deadlocks={"before": self._deadlocks()}, threshold_ms=LOCK_WAIT_MS)
            if self.server_log:
                self._log_offset = Path(self.server_log).stat().st_size
            self._thread = threading.Thread(target=self._sample_until_stopped, name="racelab-dbwatch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.data["ended"] = time.time()
        if self.vendor == "postgresql":
            self._stop.set()
            self._thread.join(timeout=10)
            with contextlib.suppress(Exception):
                self.data["deadlocks"]["after"] = self._deadlocks()
            self._connection.close()
            self.data["lock_waits"] = self._lock_waits()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data))
        return False

    def _query(self, sql):
        with self._connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def _deadlocks(self):
        rows = self._query(_DEADLOCKS)
        return int(rows[0][0]) if rows else 0

    def _sample_until_stopped(self):
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a sample lost to a busy server is no reason to stop
                self.data["samples"].append(self._sample())
            self._stop.wait(self.interval)

    def _sample(self):
        connections = {name: int(count) for name, count in self._query(_CONNECTIONS)}
        waits = {int(pid): float(ms) for pid, ms in self._query(_WAITS)}
        for pid in set(self._waits_going) - set(waits):
            self._waits_ended.append(self._waits_going.pop(pid))
        for pid, ms in waits.items():
            self._waits_going[pid] = max(ms, self._waits_going.get(pid, 0.0))
        return {"t": round(time.time(), 3), "connections": connections, "waiting": len(waits),
                "longest_wait_ms": round(max(waits.values(), default=0.0), 1)}

    def _lock_waits(self):
        sampled = [*self._waits_ended, *self._waits_going.values()]
        longest = round(max(sampled, default=0.0), 1)
        if self.server_log and Path(self.server_log).exists():
            with open(self.server_log, errors="replace") as log:
                log.seek(self._log_offset)
                text = log.read()
            return {"count": text.count(" still waiting for "), "deadlocks_logged": text.count("deadlock detected"),
                    "longest_ms": longest, "source": "the server log", "logged": logged_waits(text)}
        return {"count": sum(ms >= LOCK_WAIT_MS for ms in sampled), "longest_ms": longest,
                "source": f"samples every {self.interval:g} s, which miss waits between two"}


def logged_waits(text, limit=5):
    """Return the first ``limit`` lock waits in a PostgreSQL log: ``{"wait", "context", "statement"}`` each.

    The server logs a wait as a ``LOG`` line, then ``DETAIL``, ``CONTEXT`` and
    ``STATEMENT`` lines of the same process (``[pid]`` in the default line prefix):
    what waited, on what, and in which statement.
    """
    found, lines = [], [_LOG_LINE.match(line) for line in text.splitlines()]
    for number, line in enumerate(lines):
        if len(found) == limit:
            break
        if not line or " still waiting for " not in line["message"]:
            continue
        wait = {"wait": line["message"], "context": "", "statement": ""}
        for following in lines[number + 1:number + 8]:
            if following and following["pid"] == line["pid"] and following["level"].lower() in wait:
                wait[following["level"].lower()] = following["message"][:300]
        found.append(wait)
    return found
