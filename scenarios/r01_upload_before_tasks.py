"""R1 — a file upload commits before its tasks (fix flag ``R1``).

Set-up: a project and one JSON file of a few tasks (the count varies with the seed).
Actors: ``writer#1`` imports it synchronously (:func:`services.sync_import`, the web request);
``reader#1`` lists the project's file uploads with their task counts.
Interleaving: the reader reads after the upload row is written — ``import.after_upload_commit``
with R1 off (the upload committed on its own), ``import.file_uploads_created`` with R1 on (inside
the one transaction) — and the writer creates its tasks only after the reader has read.
Invariant (:func:`~scenarios.invariants.sync_upload_has_all_its_tasks`): a reader never sees a
synchronously imported upload without all its tasks. Buggy: the reader sees the upload with 0
tasks. Fixed: the upload is not visible yet (SQLite WAL and PostgreSQL both read the last commit).

Masking: with R5 on the upload is ``pending`` while it has no tasks, so a client that ignores
pending uploads would not notice; this invariant holds the upload itself, whatever its status.
"""
import pytest

from racelab import race_point
from label_studio.data_import import services
from scenarios.common import MODES, json_upload
from scenarios.invariants import sync_upload_has_all_its_tasks
from tests.factories import ProjectFactory

RACE = "R1"


def actors(scenario, project, user, count):
    def writer():
        with scenario.history.op("writer#1", "sync import", {"tasks": count}) as op:
            result = services.sync_import(project, user, [json_upload("a.json", count, scenario.rng)])
            op.ok({"tasks_per_upload": {fu_id: count for fu_id in result["file_upload_ids"]}})

    def reader():
        race_point("reader.list")
        with scenario.history.op("reader#1", "list uploads") as op:
            op.ok({fu.id: {"status": fu.status, "task_count": fu.task_count}
                   for fu in services.file_uploads_for_listing(project)})
        race_point("reader.listed")

    return {"writer#1": writer, "reader#1": reader}


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r1_upload_before_tasks(mode, scenario, project, user, sync_points, concurrently):
    count = scenario.rng.randint(3, 12)
    window = "import.after_upload_commit" if scenario.buggy else "import.file_uploads_created"
    sync_points.order((window, "reader.list"), ("reader.listed", "import.tasks_created"))

    concurrently(actors(scenario, project, user, count))

    sync_points.assert_order(window, "reader.list", "reader.listed", "import.tasks_created")
    scenario.check(None, sync_upload_has_all_its_tasks)


@pytest.mark.race(runs=5)
@pytest.mark.parametrize("mode", ["fixed"])
def test_r1_scheduler_explores_fixed(mode, scenario, project, user, race_scheduler):
    """With every fix on, the seeded PCT scheduler interleaves writer and reader at every race point: no anomaly."""
    race_scheduler.run(actors(scenario, project, user, scenario.rng.randint(3, 12)))
    scenario.check(None, sync_upload_has_all_its_tasks)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r1_explored(mode, scenario, user, race_explorer):
    """From the actors alone, no ordering: the explorer finds the half-imported upload with R1 off, nothing with it on."""
    def run(scheduler):
        scheduler.run(actors(scenario, ProjectFactory(created_by=user), user, scenario.rng.randint(3, 12)))

    scenario.explore(race_explorer, run, sync_upload_has_all_its_tasks)
