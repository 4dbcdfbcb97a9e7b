"""Index ``status`` — concurrently on PostgreSQL, so writers are not blocked while it builds."""
from django.db import migrations, models


def create_index(apps, schema_editor):
    model = apps.get_model("data_import", "FileUpload")
    table = model._meta.db_table
    name = schema_editor._create_index_name(table, ["status"])
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f'CREATE INDEX {concurrently}IF NOT EXISTS "{name}" ON "{table}" ("status")')


def drop_index(apps, schema_editor):
    model = apps.get_model("data_import", "FileUpload")
    name = schema_editor._create_index_name(model._meta.db_table, ["status"])
    schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("data_import", "0003_backfill_fileupload_status")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="fileupload", name="status",
                    field=models.CharField(choices=[("pending", "Pending"), ("processing", "Processing"),
                                                    ("completed", "Completed"), ("failed", "Failed")],
                                           db_index=True, default="pending", max_length=20),
                ),
            ],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        )
    ]
