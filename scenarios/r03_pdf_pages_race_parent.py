"""R3 — PDF page jobs race on their parent (fix flag ``R3``).

Set-up: an async import of one 2-page PDF, Redis, and two threaded RQ workers; ``run_import``
fans the PDF out into two page uploads and two ``process_pdf_pages`` jobs.
Actors: the two page jobs (one per worker), each reading the parent, creating its page's task and
counting itself on the parent.
Interleaving: neither page job extracts its text (``pdf.page_extracted``) before the other has
claimed its page (``import.file_upload_claimed``), so both have read the parent before either
updates it. The orderings are added when the fan-out is done (``import.pdf_fanned_out``), before
any page job may start. Both waits are outside a transaction, so SQLite's write lock never
closes a cycle.
Invariant (:func:`~scenarios.invariants.pdf_fan_in_is_exact`): parent ``completed`` ⇔ all pages
completed; ``pages_done`` = final pages; parent count = sum of the pages. Buggy: each job writes
``pages_done = 0 + 1`` from its stale copy — a lost update, the parent never completes. Fixed:
``F()`` under a row lock, the last page finalises the parent.
"""
import pytest

from label_studio.data_import import services
from label_studio.data_import.models import FileUpload
from label_studio.data_import.services import Upload
from scenarios.common import (MODES, PROCESS_PDF_PAGES, RUN_IMPORT, WORKERS, pdf_bytes, record_jobs, start_workers,
                              uploads_state)
from scenarios.invariants import pdf_fan_in_is_exact
from tests.factories import ProjectFactory

RACE = "R3"


def force_both_reads_before_either_update(sync_points):
    """At the fan-out, order each page's extraction after every other page's claim."""
    def add_orders(context):
        pages = list(FileUpload.objects.filter(parent_id=context["file_upload_id"]).values_list("id", flat=True))
        sync_points.order(*[(("import.file_upload_claimed", {"file_upload_id": other}),
                             ("pdf.page_extracted", {"file_upload_id": page}))
                            for page in pages for other in pages if other != page])
    sync_points.on("import.pdf_fanned_out", add_orders, label="order the page jobs")
    sync_points.order(("import.pdf_fanned_out", ("job.start", {"job": PROCESS_PDF_PAGES})))


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
def test_r3_pdf_pages_race_parent(mode, scenario, project, user, sync_points, rq_worker_threads, eventually):
    force_both_reads_before_either_update(sync_points)
    record_jobs(sync_points, scenario.history, PROCESS_PDF_PAGES, "page-job")
    record_jobs(sync_points, scenario.history, RUN_IMPORT, "import-job")

    rq_worker_threads(2)
    services.start_async_import(project, user, [Upload(f"doc-{scenario.seed % 100}.pdf", pdf_bytes(2))])
    eventually(lambda: sync_points.passed(("job.end", {"job": PROCESS_PDF_PAGES})) == 2, 30, "both page jobs to end")

    scenario.check({"uploads": uploads_state(project)}, pdf_fan_in_is_exact)


@pytest.mark.race
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("on", WORKERS)
def test_r3_explored(mode, on, scenario, user, sync_points, race_explorer, request):
    """From the actors alone: two workers (threads or processes), one 2-page PDF; the lost update with R3 off."""
    record_jobs(sync_points, scenario.history, PROCESS_PDF_PAGES, "page-job")
    start_workers(request, race_explorer, on, 2)

    def run(scheduler):
        project = ProjectFactory(created_by=user)
        scheduler.run({"request#1": lambda: services.start_async_import(project, user, [Upload("doc.pdf", pdf_bytes(2))])})
        return {"uploads": uploads_state(project)}

    scenario.explore(race_explorer, run, pdf_fan_in_is_exact, workers=2)
