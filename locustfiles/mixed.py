"""Load scenario ``mixed``: every format, several files per request, and bad files that must get a 400.

A bad file (unknown extension, unparsable JSON, empty file, hostile name) must
be refused with a 400 and leave nothing behind; anything else is recorded as
``bad_file_accepted``, and a leftover task shows up as ``project_count_mismatch``
at the user's next import::

    RACELAB_TOKEN=KEY locust -f locustfiles/mixed.py --host http://127.0.0.1:8123 --headless \\
        -u 20 -r 10 --run-time 60s --csv reports/results/load --csv-full-history
"""
import random

from locust import between, task

from racelab.locustfiles._common import ImportUser
from racelab.locustfiles._payloads import BAD_KINDS, GOOD_FORMATS, Batch, bad_batch, json_body_batch, upload


class MixedUser(ImportUser):
    """Import any format, one or several files at a time, with a bad file now and then."""

    weight = 4
    pause = between(2.0, 6.0)

    @task(4)
    def one_file(self):
        kind = random.choice(GOOD_FORMATS)
        self.run_import(Batch(label=kind, files=[upload(kind, random.randint(1, 5 if kind == "pdf" else 30))]))

    @task(2)
    def several_files(self):
        kinds = random.sample([k for k in GOOD_FORMATS if k != "pdf"], 3)
        self.run_import(Batch(label="+".join(kinds), files=[upload(k, random.randint(1, 10)) for k in kinds]))

    @task(1)
    def json_body(self):
        self.run_import(json_body_batch(random.randint(1, 30)))

    @task(2)
    def bad_file(self):
        self.run_import(bad_batch(random.choice(BAD_KINDS)))
