"""Serve a build of the reference app — this checkout or a worktree of another commit — from a child process.

A :class:`ServedBuild` runs the build's *own* :func:`racelab.serving.served_app`
in a Python whose working directory and imports are the build's checkout
(:func:`racelab.checkout.python_path`), so two builds serve side by side, each
the way it serves itself. Everything the build starts — gunicorn, rq workers,
rq cron, PostgreSQL, Redis — is a descendant of that child: :attr:`ServedBuild.pid`
is the root of the served stack's process tree, for :mod:`racelab.proctree`.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from racelab import checkout

START_TIMEOUT = 300.0  # seconds: initdb, migrations and every process up, on a busy machine
STOP_TIMEOUT = 60.0

# Run in the build's checkout: only served_app's keywords that every build since the bench began has.
_HOST = """
import json, subprocess, sys
from racelab.serving import served_app
with served_app(log=subprocess.DEVNULL, **json.loads(sys.argv[1])) as app:
    print(json.dumps({"url": app.url, "token": app.token}), flush=True)
    sys.stdin.read()  # serve until the parent closes stdin (or dies)
"""


def describe(root):
    """Return ``root``'s commit, short, with ``+changes`` when its work tree differs from it."""
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{commit}+changes" if dirty else commit


class ServedBuild:
    """The app of checkout ``root`` with ``fixes``, served until :meth:`stop`; a context manager.

    ``url`` and ``token`` are the running app's; ``pid`` the root of its process
    tree. Raise RuntimeError, with the child's last output, if it does not come
    up within ``START_TIMEOUT`` seconds.
    """

    def __init__(self, label, root, fixes="all", db="postgres", workers=3):
        self.label, self.root, self.fixes, self.commit = label, Path(root), fixes, describe(root)
        self.home = tempfile.mkdtemp(prefix="racelab-build-")
        self.log_path = Path(self.home) / "serve.log"
        env = {**os.environ, "PYTHONPATH": checkout.python_path(self.root, Path(self.home) / "shim")}
        options = {"db": db, "workers": workers, "fixes": fixes}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", _HOST, json.dumps(options)], cwd=self.root,
                                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                            start_new_session=True)
        self.pid = self.process.pid
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            output = self.log_path.read_text(errors="replace")[-3000:]
            self.stop()
            raise RuntimeError(f"{label} ({self.root}) was not serving within {START_TIMEOUT:.0f}s; the last of "
                               f"its output:\n{output}")
        served = json.loads(line)
        self.url, self.token = served["url"], served["token"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """Stop the app and all it started; kill the child's session if it outlives ``STOP_TIMEOUT`` seconds."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)
