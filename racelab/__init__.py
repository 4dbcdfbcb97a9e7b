"""racelab: prove a Django + RQ background-job flow free of races, and keep it so in CI.

``from racelab import race_point`` is all an application imports: a named place where a test
may intervene (see :mod:`racelab.harness.race`). Importing it loads no Django, RQ or pytest.
The pytest plugin is :mod:`racelab.harness.plugin`; the command line is :mod:`racelab.cli`.
"""
from racelab.harness.race import race_point

__all__ = ["race_point"]
