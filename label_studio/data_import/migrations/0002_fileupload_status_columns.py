"""Add the status-tracking columns with defaults: a cheap, additive change (no backfill here)."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("data_import", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="fileupload", name="status",
            field=models.CharField(choices=[("pending", "Pending"), ("processing", "Processing"),
                                            ("completed", "Completed"), ("failed", "Failed")],
                                   default="pending", max_length=20),
        ),
        migrations.AddField(model_name="fileupload", name="tasks_created_at",
                            field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name="fileupload", name="error_message",
                            field=models.TextField(blank=True, null=True)),
        migrations.AddField(
            model_name="fileupload", name="claimed_at",
            field=models.DateTimeField(blank=True, help_text="When a job claimed it (stale claims are retried).",
                                       null=True),
        ),
    ]
