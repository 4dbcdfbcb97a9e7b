"""Re-dispatch imports and PDF pages left stuck past the timeout (what the periodic job does)."""
import json

from django.core.management.base import BaseCommand

from label_studio.data_import.services import reconcile


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--stuck-after", type=int, default=None,
                            help="Seconds after which an import counts as stuck (default IMPORT_STUCK_AFTER_SECONDS).")

    def handle(self, *args, stuck_after=None, **options):
        self.stdout.write(json.dumps(reconcile(stuck_after)))
