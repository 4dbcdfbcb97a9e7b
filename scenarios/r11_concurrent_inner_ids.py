"""R11 — concurrent imports into one project race on inner ids (fix flag ``R11``).

Set-up: one project, two JSON files (sizes vary with the seed).
Actors: ``import#1`` and ``import#2`` import one file each, synchronously and at once
(:func:`services.sync_import`, two web requests).
Interleaving: with R11 off each import reads ``max(inner_id) + 1`` and then passes
``import.inner_ids_read``; there the two meet (a two-party rendezvous, as each must have read
before either inserts — a one-way ``order`` cannot say "both before either"), then both insert.
With R11 on there is no such point: the allocation runs under the project's row lock.
Invariant (:func:`~scenarios.invariants.inner_ids_unique`): inner ids unique in the project and the
project's count exact. Buggy: both imports start at the same inner id — duplicates. Fixed: unique.

Masking: on SQLite every allocation runs inside a ``BEGIN IMMEDIATE`` transaction (the settings'
``transaction_mode``), which serialises whole imports, so max()+1 cannot race there: SQLite masks
R11 and the buggy run is skipped on it. The race is PostgreSQL's (and any MVCC database's).
"""
import threading

import pytest
from django.db import connection

from label_studio.data_import import services
from label_studio.tasks.models import Task
from scenarios.common import MODES, json_upload
from scenarios.invariants import inner_ids_unique
from tests.factories import ProjectFactory

RACE = "R11"
SQLITE_MASKS = ("R11 cannot race on SQLite: every inner-id allocation runs in a BEGIN IMMEDIATE transaction "
                "(DATABASES OPTIONS transaction_mode), which serialises the imports; run it with --race-db postgres.")


def importer(scenario, project, user, name, count):
    def run():
        with scenario.history.op(name, "sync import", {"tasks": count}) as op:
            result = services.sync_import(project, user, [json_upload(f"{name}.json", count, scenario.rng)])
            op.ok({"task_count": result["task_count"]})
    return run


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r11_concurrent_inner_ids(mode, scenario, project, user, sync_points, concurrently, request):
    if scenario.buggy and connection.vendor == "sqlite":
        scenario.skip(SQLITE_MASKS)
    both_read = threading.Barrier(2, timeout=request.config.getoption("race_timeout"))
    sync_points.on("import.inner_ids_read", lambda context: both_read.wait(), label="both read before either inserts")
    sizes = [scenario.rng.randint(2, 9) for _ in range(2)]

    concurrently({f"import#{n}": importer(scenario, project, user, f"import#{n}", size)
                  for n, size in enumerate(sizes, 1)})

    inner_ids = list(Task.objects.filter(project=project).values_list("inner_id", flat=True))
    scenario.check({"project": project.id, "inner_ids": inner_ids}, inner_ids_unique)


@pytest.mark.race(runs=5)
@pytest.mark.parametrize("mode", ["fixed"])
def test_r11_scheduler_explores_fixed(mode, scenario, project, user, race_scheduler):
    """With every fix on, the seeded PCT scheduler interleaves the two imports at every race point: ids unique."""
    race_scheduler.run({f"import#{n}": importer(scenario, project, user, f"import#{n}", scenario.rng.randint(2, 9))
                        for n in (1, 2)})
    inner_ids = list(Task.objects.filter(project=project).values_list("inner_id", flat=True))
    scenario.check({"project": project.id, "inner_ids": inner_ids}, inner_ids_unique)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r11_explored(mode, scenario, user, race_explorer):
    """From the actors alone: two imports into one project; duplicate inner ids with R11 off (PostgreSQL)."""
    if scenario.buggy and connection.vendor == "sqlite":
        scenario.skip(SQLITE_MASKS)

    def run(scheduler):
        project = ProjectFactory(created_by=user)
        scheduler.run({f"import#{n}": importer(scenario, project, user, f"import#{n}", scenario.rng.randint(2, 9))
                       for n in (1, 2)})
        return {"project": project.id, "inner_ids": list(Task.objects.filter(project=project)
                                                         .values_list("inner_id", flat=True))}

    scenario.explore(race_explorer, run, inner_ids_unique)
