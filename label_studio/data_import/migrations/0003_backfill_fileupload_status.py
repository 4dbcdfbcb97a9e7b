"""Backfill status in batches, each its own transaction; safe to re-run (see data_import.backfill)."""
from django.db import migrations

from label_studio.data_import.backfill import backfill_status


def forwards(apps, schema_editor):
    backfill_status(apps.get_model("data_import", "FileUpload"), apps.get_model("tasks", "Task"))


class Migration(migrations.Migration):
    atomic = False  # one transaction per batch, never one over the whole table

    dependencies = [("data_import", "0002_fileupload_status_columns"), ("tasks", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
