"""The racelab harness: race points, sync points, injection, workers, histories and the scheduler.

Installed as ``racelab.harness`` (this folder is mapped there by ``pyproject.toml``). Import it by
that name only: a second copy imported as plain ``harness`` would hold its own race-point
controller, which the first copy's points would never reach.
"""
if __name__ != "racelab.harness":
    raise ImportError(f"This package is racelab.harness; it was imported as {__name__!r}. Install racelab "
                      "(`pip install -e .` in its checkout) and import racelab.harness instead.")
