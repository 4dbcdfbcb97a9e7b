"""The status migration: columns first, then a batched, re-runnable backfill."""
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from label_studio.data_import.backfill import NO_TASKS_MESSAGE, backfill_status


@pytest.mark.django_db(transaction=True)
def test_backfill_marks_old_rows_in_batches_and_is_safe_to_rerun(user, project):
    executor = MigrationExecutor(connection)
    before = [("data_import", "0001_initial"), ("tasks", "0001_initial")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    OldFileUpload, OldTask = apps.get_model("data_import", "FileUpload"), apps.get_model("tasks", "Task")
    with_tasks = [OldFileUpload.objects.create(project_id=project.id, user_id=user.id, file=f"a{i}.csv") for i in range(5)]
    for fu in with_tasks:
        OldTask.objects.create(project_id=project.id, file_upload_id=fu.id, data={"t": 1})
    orphan = OldFileUpload.objects.create(project_id=project.id, user_id=user.id, file="old.csv")
    recent = OldFileUpload.objects.create(project_id=project.id, user_id=user.id, file="new.csv")
    OldFileUpload.objects.filter(id=orphan.id).update(created_at=timezone.now() - timedelta(days=2))

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    columns_added = [("data_import", "0002_fileupload_status_columns"), ("tasks", "0001_initial")]
    executor.migrate(columns_added)
    apps = executor.loader.project_state(columns_added).apps
    FileUpload, Task = apps.get_model("data_import", "FileUpload"), apps.get_model("tasks", "Task")
    assert set(FileUpload.objects.values_list("status", flat=True)) == {"pending"}

    counts = backfill_status(FileUpload, Task, batch_size=2)
    assert counts == {"completed": 5, "failed": 1, "batches": 4}
    statuses = dict(FileUpload.objects.values_list("id", "status"))
    assert [statuses[fu.id] for fu in with_tasks] == ["completed"] * 5
    assert (statuses[orphan.id], statuses[recent.id]) == ("failed", "pending")
    assert FileUpload.objects.get(id=orphan.id).error_message == NO_TASKS_MESSAGE

    assert backfill_status(FileUpload, Task, batch_size=2) == {"completed": 0, "failed": 0, "batches": 1}

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
