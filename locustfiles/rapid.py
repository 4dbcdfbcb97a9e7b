"""Load scenario ``rapid``: back-to-back imports into one project, half a second apart.

All ``RapidUser`` users of a Locust process share one project, so with more
than one user the imports also run concurrently into it (R11); the project
total must never fall below what was already confirmed. With ``-u 1`` it is a
purely sequential stream::

    RACELAB_TOKEN=KEY locust -f locustfiles/rapid.py --host http://127.0.0.1:8123 --headless \\
        -u 5 -r 5 --run-time 60s --csv reports/results/load --csv-full-history
"""
import random

from locust import constant, task

from racelab.locustfiles._common import ImportUser
from racelab.locustfiles._payloads import file_batch, json_body_batch


class RapidUser(ImportUser):
    """Import a few tasks, check, and import again half a second later, into the process's shared project."""

    weight = 1
    pause = constant(0.5)  # a script's pace; at 0 a closed loop takes whatever capacity the others leave
    shared_project = True

    @task(2)
    def json_body(self):
        self.run_import(json_body_batch(random.randint(1, 5)))

    @task(1)
    def small_file(self):
        self.run_import(file_batch(random.choice(("json", "csv", "txt")), random.randint(1, 5)))
