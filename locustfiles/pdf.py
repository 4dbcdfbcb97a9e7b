"""Load scenario ``pdf``: 50-page PDFs, a task per page, fanned out to page jobs on the server.

The PDFs are drawn in-process by :func:`racelab.locustfiles._payloads.pdf_document`
(no reportlab, no Django). Besides the PDF's own count, the page file uploads
are checked: one per page, the parent's count is their sum, and the parent is
not ``completed`` before its pages. Time-to-display is recorded as
``time_to_display:pdf50``::

    RACELAB_TOKEN=KEY locust -f locustfiles/pdf.py --host http://127.0.0.1:8123 --headless \\
        -u 5 -r 5 --run-time 60s --csv reports/results/load --csv-full-history
"""

from locust import between, task

from racelab.locustfiles._common import ImportUser
from racelab.locustfiles._payloads import file_batch

PAGES = 50


class PdfUser(ImportUser):
    """Import one 50-page PDF at a time and check the PDF and its pages."""

    weight = 1
    pause = between(5.0, 10.0)
    async_weight = 3  # the page fan-out is the async path's race (R3); sync still runs
    display_metric = "time_to_display:pdf50"

    @task
    def fifty_page_pdf(self):
        self.run_import(file_batch("pdf", PAGES))
