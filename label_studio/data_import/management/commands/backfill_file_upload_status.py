"""Backfill file-upload status for rows that predate status tracking, batch by batch; safe to re-run."""
import json

from django.core.management.base import BaseCommand

from label_studio.data_import.backfill import backfill_status
from label_studio.data_import.models import FileUpload
from label_studio.tasks.models import Task


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000, help="Rows per transaction.")

    def handle(self, *args, batch_size=1000, **options):
        self.stdout.write(json.dumps(backfill_status(FileUpload, Task, batch_size=batch_size)))
