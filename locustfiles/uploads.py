"""Load scenario ``uploads``: many users at once, each uploading one small file at a time.

Meant for 100 concurrent users; every import is checked and timed::

    RACELAB_TOKEN=KEY locust -f locustfiles/uploads.py --host http://127.0.0.1:8123 --headless \\
        -u 100 -r 25 --run-time 60s --csv reports/results/load --csv-full-history

Nothing here waits unbounded: each import gives up after ``--import-deadline``.
"""
import random

from locust import between, task

from racelab.locustfiles._common import ImportUser
from racelab.locustfiles._payloads import file_batch

SMALL_FORMATS = ("json", "jsonl", "csv", "tsv", "txt")


class UploadsUser(ImportUser):
    """Upload one small file (1–20 tasks, any text format), sync or async, and check it shows."""

    weight = 12
    pause = between(2.0, 6.0)
    project_total_check = False  # per-file counts say it all here; falls back by itself on upstream

    @task
    def upload_small_file(self):
        self.run_import(file_batch(random.choice(SMALL_FORMATS), random.randint(1, 20)))
