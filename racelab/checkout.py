"""Find racelab's source checkout, which holds the reference app and the race scenarios.

``racelab serve``, ``races``, ``bench``, ``run`` and ``load`` without ``--host`` run the reference
app (``label_studio/``) or the scenarios (``scenarios/``). Both live beside this package in a
checkout installed with ``pip install -e .`` and nowhere else: the wheel carries the harness, the
load suite, the reports and the command line only. :func:`worktree` checks another commit out
beside it, and :func:`python_path` makes a Python import racelab and the app from either.
"""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class NotACheckout(RuntimeError):
    """Raised by :func:`require` outside racelab's source checkout; the message says what to do."""


def is_checkout() -> bool:
    """Return whether this racelab runs from its source checkout (reference app and scenarios present)."""
    pyproject = ROOT / "pyproject.toml"
    return (pyproject.is_file() and 'name = "racelab"' in pyproject.read_text()
            and (ROOT / "label_studio" / "core" / "settings.py").is_file() and (ROOT / "scenarios" / "common.py").is_file())


def require(what: str) -> Path:
    """Return the checkout's root, importable from now on; raise NotACheckout naming the fix when there is none."""
    if not is_checkout():
        raise NotACheckout(
            f"{what} needs racelab's reference app, which ships in racelab's source checkout only: the wheel holds "
            "the harness, the load suite and the reports. Clone racelab and run `make serve` or `make run` there, "
            "or load-test your own server with `RACELAB_TOKEN=KEY racelab load --host URL`.")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return ROOT


# Written as a sitecustomize, which every interpreter imports at start-up: the served processes too.
_SHIM = '''"""Import racelab.* from {root}, ahead of an editable install of another checkout (see racelab.checkout)."""
import sys
from importlib.machinery import PathFinder

PACKAGE_DIRS = {package_dirs!r}


class CheckoutFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in PACKAGE_DIRS:
            return PathFinder.find_spec(name, [PACKAGE_DIRS[name]])
        return None


sys.meta_path.insert(0, CheckoutFinder)
'''


def package_dirs(root: Path) -> dict:
    """Return ``{package: folder}`` of checkout ``root``, as its ``pyproject.toml`` maps racelab.* to folders."""
    import tomllib

    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    # PathFinder looks a package up by its last name in the given folder: give it the folder's parent.
    return {package: str((root / folder).parent) for package, folder in mapping.items()
            if (root / folder).name == package.rpartition(".")[2]}


def python_path(root: Path, shim_dir: Path) -> str:
    """Return a ``PYTHONPATH`` under which Python imports ``root``'s reference app and racelab.* from ``root``.

    An editable install maps racelab.harness, .locustfiles and .reports to the
    checkout it was installed from, whatever ``PYTHONPATH`` says; a
    ``sitecustomize`` written into ``shim_dir`` maps them to ``root`` instead.
    It shadows any other ``sitecustomize`` on the path.
    """
    shim_dir.mkdir(parents=True, exist_ok=True)
    (shim_dir / "sitecustomize.py").write_text(_SHIM.format(root=root, package_dirs=package_dirs(root)))
    return os.pathsep.join([str(shim_dir), str(root)])


@contextlib.contextmanager
def worktree(commit: str):
    """Check ``commit`` out into a temporary git worktree of this checkout; yield its root; remove it on exit.

    Raise NotACheckout, with git's own words, when ``commit`` names nothing in this repository.
    """
    require("Checking out another commit")
    place = Path(tempfile.mkdtemp(prefix="racelab-base-")) / "checkout"
    added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(place), commit],
                           capture_output=True, text=True)
    if added.returncode:
        shutil.rmtree(place.parent, ignore_errors=True)
        raise NotACheckout(f"Cannot check out {commit!r} beside {ROOT}: {added.stderr.strip()} "
                           "Give a commit of this repository, e.g. --base main or --base HEAD~3.")
    try:
        yield place
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(place)], capture_output=True)
        shutil.rmtree(place.parent, ignore_errors=True)
