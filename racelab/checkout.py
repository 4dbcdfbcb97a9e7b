"""Find racelab's source checkout, which holds the reference app and the race scenarios.

``racelab serve``, ``races``, ``bench``, ``run`` and ``load`` without ``--host`` run the reference
app (``label_studio/``) or the scenarios (``scenarios/``). Both live beside this package in a
checkout installed with ``pip install -e .`` and nowhere else: the wheel carries the harness, the
load suite, the reports and the command line only.
"""
import sys
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
