"""Print the import flow's health: status distribution, stuck files, count mismatches, job success."""
import json

from django.core.management.base import BaseCommand

from label_studio.core.events import event
from label_studio.data_import.metrics import import_flow_metrics


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--stuck-after", type=int, default=None, help="Seconds after which a non-final file counts as stuck.")
        parser.add_argument("--fail-on-problem", action="store_true", help="Exit 1 when a file is stuck or a count is wrong.")

    def handle(self, *args, stuck_after=None, fail_on_problem=False, **options):
        metrics = import_flow_metrics(stuck_after)
        event("import.metrics", **{k: v for k, v in metrics.items() if not k.endswith("_ids")})
        self.stdout.write(json.dumps(metrics, indent=2, default=str))
        if fail_on_problem and (metrics["stuck_files"] or metrics["count_mismatches"]):
            raise SystemExit(1)
