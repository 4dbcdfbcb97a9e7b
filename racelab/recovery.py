"""Tell when a served app has recovered from a fault: the nemesis's probe.

:class:`RecoveryProbe` answers two questions from outside the app — its health
check over HTTP and its database by plain SQL, like :mod:`racelab.completeness`:
which imports and file uploads are unfinished right now (``caught()``, read as a
fault begins and as it ends), and what still keeps the app from having recovered (``pending(caught)``):
a health check that does not answer 200, or any of those rows still unfinished.
The app has recovered when ``pending`` returns None. It reads, never writes.
"""
import urllib.error
import urllib.request

from racelab.completeness import ACTIVE_ROWS, connect

HEALTH_PATH = "/api/health/import-flow"


class RecoveryProbe:
    """Probe the app served at ``url`` whose database is ``database_url``; every call is bounded by ``timeout`` s."""

    def __init__(self, url, database_url, timeout=5.0):
        self.health_url, self.database_url, self.timeout = url.rstrip("/") + HEALTH_PATH, database_url, timeout

    def caught(self):
        """Return the ``(kind, id)`` of every import and file upload unfinished now (empty if the database cannot be read)."""
        try:
            return self._active()
        except Exception:  # any driver's error: the fault may still hold the database; pending() will tell
            return set()

    def pending(self, caught):
        """Return why the app has not recovered yet (health, then the first of ``caught`` still unfinished), or None."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            return f"the health check did not answer: {exc}"
        if status != 200:
            return f"the health check answered {status}"
        try:
            unfinished = sorted(self._active() & set(caught))
        except Exception as exc:
            return f"the database cannot be read: {' '.join(str(exc).split())[:200]}"
        if unfinished:
            kind, pk = unfinished[0]
            return (f"{len(unfinished)} of the {len(caught)} imports and files the fault caught are unfinished, "
                    f"e.g. {kind} {pk}")
        return None

    def _active(self):
        with connect(self.database_url) as query:
            return {(kind, pk) for kind, pk, _ in query(ACTIVE_ROWS)}
