"""Load scenario ``batch``: 1000-task imports as a JSON file, a CSV file and a JSON request body.

``--batch-size`` / ``RACELAB_BATCH_SIZE`` sets another size (``make load-faults``
pauses a worker in 20,000-task imports). Time-to-display is recorded as
``time_to_display:batch<size>``, apart from the small-file figure that the
``time_to_display`` gate judges::

    RACELAB_TOKEN=KEY locust -f locustfiles/batch.py --host http://127.0.0.1:8123 --headless \\
        -u 10 -r 5 --run-time 60s --csv reports/results/load --csv-full-history
"""

from locust import between, task

from racelab.locustfiles._common import ImportUser
from racelab.locustfiles._payloads import file_batch, json_body_batch


class BatchUser(ImportUser):
    """Import ``--batch-size`` tasks (1000) at a time, in each of three shapes, and check every one shows."""

    weight = 1
    pause = between(2.0, 5.0)

    @property
    def display_metric(self):
        return f"time_to_display:batch{self.settings.batch_size}"

    @task
    def json_file(self):
        self.run_import(file_batch("json", self.settings.batch_size))

    @task
    def csv_file(self):
        self.run_import(file_batch("csv", self.settings.batch_size))

    @task
    def json_body(self):
        self.run_import(json_body_batch(self.settings.batch_size))
