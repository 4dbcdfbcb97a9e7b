"""Open the project a load user imports into, and keep the ledger of what it must hold.

A project belongs to one user, or (``shared_project``) to all users of a class
in one Locust process. Creating one is the only write here; nothing is checked.
"""
import random
import threading

from racelab.locustfiles._observations import HEALTH_PATH, observations

HTTP_TIMEOUT = 30  # seconds for any one request (ImportUser's network timeout); the import deadline bounds a whole import
_lock = threading.Lock()  # gevent-patched under Locust: one probe, one shared project per process


def probe_target(user):
    """Return whether the target is a racelab server (it has the health endpoint); ask once per process."""
    cache = user.environment.__dict__.setdefault("racelab_target", {})
    with _lock:
        if "racelab" not in cache:
            with user.client.get(HEALTH_PATH, name=HEALTH_PATH, catch_response=True) as resp:
                cache["racelab"] = resp.status_code in (200, 503)  # 503: racelab, unhealthy
                if resp.status_code in (200, 404, 503):
                    resp.success()  # a 404 only means "not a racelab server"
                else:
                    resp.failure(f"answered {resp.status_code}: {body_start(resp)}")
            if not cache["racelab"]:
                observations(user.environment).notice(
                    f"target has no {HEALTH_PATH} ({resp.status_code}): treating it as upstream Label Studio; "
                    "racelab-only fields are checked where present")
    return cache["racelab"]


def open_ledger(user):
    """Return the user's :class:`Ledger`: a new project, or its class's shared one in this process."""
    if not user.shared_project:
        return Ledger(create_project(user))
    ledgers = user.environment.__dict__.setdefault("racelab_ledgers", {})
    with _lock:
        if type(user) not in ledgers:
            ledgers[type(user)] = Ledger(create_project(user), shared=True)
    return ledgers[type(user)]


def create_project(user):
    """Create a project for ``user`` and return its id; raise ``RuntimeError`` saying what to check."""
    title = f"racelab {type(user).__name__} {random.getrandbits(32):08x}"
    with user.client.post("/api/projects", name="/api/projects", json={"title": title},
                          catch_response=True) as resp:
        if resp.status_code not in (200, 201):
            resp.failure(f"creating a project answered {resp.status_code}: {body_start(resp)}")
            raise RuntimeError(f"could not create a project on {user.host} ({resp.status_code}): "
                               "check the token (RACELAB_TOKEN) and that the host serves /api/projects")
        return resp.json()["id"]


class Ledger:
    """The tasks confirmed visible in one project, and those that may or may not still appear."""

    def __init__(self, project_id, shared=False):
        self.project_id, self.shared, self.confirmed, self.slack = project_id, shared, 0, 0

    def confirm(self, tasks):
        """Add ``tasks`` that were just seen committed (greenlets do not preempt between read and add)."""
        self.confirmed += tasks

    def unsure(self, tasks):
        """Allow for ``tasks`` of an import whose outcome is unknown (stuck, request failed) to appear later.

        Its own anomaly is recorded already; this keeps it from being counted
        again as a ``project_count_mismatch`` when its tasks do show up.
        """
        self.slack += tasks

    def resync(self, total):
        """Adopt the server's ``total`` after an unaccounted write, so one anomaly is not recorded twice."""
        if total is not None and not self.shared:
            self.confirmed = total


def body_start(resp):
    """Return the start of ``resp``'s body for a failure message ("" when the connection dropped before one)."""
    return (resp.text or "")[:200]


def json_body(resp, ok, what=""):
    """Return ``resp``'s JSON when its status is one of ``ok``; else record the failure, its text led by ``what``,
    and return ``None``."""
    if resp.status_code not in ok:
        resp.failure(f"{what}answered {resp.status_code}: {body_start(resp)}")
        return None
    try:
        return resp.json()
    except ValueError:
        resp.failure(f"{what}answered non-JSON: {body_start(resp)}")
        return None
