"""Measure what a race point costs when no controller is installed (the production case)."""
from racelab.harness import race
from racelab import race_point

CALLS = 1000


def thousand_race_points():
    for _ in range(CALLS):
        race_point("x", a=1)


def test_race_point_without_a_controller(benchmark):
    # One call (~100 ns) is below the timer's resolution, and benchmark's own call-through adds
    # about as much: time a plain loop of calls and read the table per 1000 race points.
    assert race.installed() is None
    benchmark(thousand_race_points)
    if benchmark.stats is not None:  # None when benchmarks are off (--benchmark-disable, xdist)
        benchmark.extra_info["ns_per_race_point"] = round(benchmark.stats.stats.median / CALLS * 1e9, 1)
