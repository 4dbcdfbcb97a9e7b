"""Big units of work under a reader: a 1000-task batch, and a 50-page PDF fanned out to several workers.

The 1000-task file runs synchronously (through the API) and asynchronously (a worker thread);
the PDF's page jobs run on three worker threads and on two real ``rq worker`` processes. A
reader lists the uploads and polls the import throughout. Invariants: every import and page
completed, the parent's count the sum of its pages and ``completed`` ⇔ all pages completed,
counts exact, and no reader saw part of a unit of work or a ``completed`` upload short of tasks.
"""
import os

import pytest
from django.conf import settings

from label_studio.data_import.models import FileUpload
from label_studio.data_import.services import Upload
from scenarios.common import PROCESS_PDF_PAGES, RUN_IMPORT, json_upload, pdf_bytes, record_jobs
from scenarios.invariants import no_partial_tasks_visible, pdf_fan_in_is_exact
from tests.concurrency.support import (
    DELAY, Finished, Reader, assert_delays_applied, async_importer, check,
    completed_import_polled_whole, every_import_completed, expected_tasks, final_state, imports_final, inject,
    listed_counts_are_task_rows, project_tasks_exact, sync_importer,
)
from tests.concurrency.test_one_project import ASYNC_INVARIANTS, SYNC_INVARIANTS, api_import

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 1000
PAGES = 50
PDF_INVARIANTS = (every_import_completed, listed_counts_are_task_rows, project_tasks_exact, pdf_fan_in_is_exact,
                  completed_import_polled_whole, no_partial_tasks_visible)


def run_async_import_under_reader(concurrently, race_history, project, user, files):
    """Start one async import of ``files`` while a reader follows it to the end (or to a stall); return its id."""
    import_ids = []
    finished, done = Finished(1), imports_final(import_ids)
    concurrently({"request#1": finished.wrap("request#1", async_importer(
                      race_history, "request#1", project, user, files, import_ids)),
                  "reader#1": Reader(race_history, project, until=lambda: finished() and done(), imports=import_ids)},
                 timeout=150)
    return import_ids[0]


@pytest.mark.parametrize("delays", ["none", "commit"])
def test_1000_task_batch_imported_synchronously(delays, project, user, api, sync_points, concurrently, race_history,
                                                race_checker):
    """A 1000-task JSON file through the sync API while a reader lists: it sees none of the tasks or all."""
    inject(sync_points, delays)
    finished = Finished(1)
    concurrently({"request#1": finished.wrap("request#1", sync_importer(
                      race_history, "request#1", lambda: api_import(api, project, "batch.json", BATCH), BATCH)),
                  "reader#1": Reader(race_history, project, until=finished)}, timeout=120)

    assert_delays_applied(sync_points, delays)
    check(race_checker, final_state(project, expected_tasks(race_history)), *SYNC_INVARIANTS)


@pytest.mark.parametrize("delays", ["none", "commit+worker"])
def test_1000_task_batch_imported_by_workers(delays, project, user, sync_points, rq_worker_threads, concurrently,
                                             race_history, race_checker):
    """A 1000-task file and a 300-task file in one async import, two workers, a reader polling throughout."""
    inject(sync_points, delays)
    record_jobs(sync_points, race_history, RUN_IMPORT, "import-job")
    rq_worker_threads(2)

    run_async_import_under_reader(concurrently, race_history, project, user, [
        (json_upload("batch.json", BATCH), BATCH), (json_upload("extra.json", 300), 300)])

    assert_delays_applied(sync_points, delays)
    check(race_checker, final_state(project, expected_tasks(race_history)), *ASYNC_INVARIANTS)


@pytest.mark.parametrize("delays", ["none", "worker"])
def test_50_page_pdf_on_three_worker_threads(delays, project, user, sync_points, rq_worker_threads, concurrently,
                                             race_history, race_checker):
    """A 50-page PDF's IMPORT_PDF_PAGE_JOBS page jobs spread over three worker threads; they fan in exactly."""
    inject(sync_points, delays)
    record_jobs(sync_points, race_history, PROCESS_PDF_PAGES, "page-job")
    rq_worker_threads(3)

    run_async_import_under_reader(concurrently, race_history, project, user, [(Upload("doc.pdf", pdf_bytes(PAGES)), PAGES)])

    assert_delays_applied(sync_points, delays)
    page_jobs = [inv for inv, _ in race_history.pairs() if inv.f == "process_pdf_pages"]
    assert len(page_jobs) == settings.IMPORT_PDF_PAGE_JOBS, f"{len(page_jobs)} page jobs ran for {PAGES} pages"
    assert sorted(page for inv in page_jobs for page in inv.value[0]) == sorted(
        FileUpload.objects.filter(parent__isnull=False).values_list("id", flat=True)), "a page was left out or doubled"
    if delays != "none":  # a held job keeps its worker busy: the others must take pages meanwhile
        workers = {inv.process.rpartition("@")[2] for inv in page_jobs}
        assert len(workers) >= 2, f"all {PAGES} page jobs ran on {workers}; the fan-out never ran in parallel"
    check(race_checker, final_state(project, expected_tasks(race_history)), *PDF_INVARIANTS)


@pytest.mark.parametrize("inject_env", ["", "worker=50ms"], ids=["none", "worker"])
def test_50_page_pdf_and_a_batch_on_two_worker_processes(inject_env, project, user, rq_worker_process, remote_sync_points,
                                                         concurrently, race_history, race_checker):
    """Real ``rq worker`` processes (``RACELAB_INJECT`` delaying every job start) run a PDF's pages and a batch.

    ``remote_sync_points`` collects the workers' race points, to show that they ran the jobs and
    obeyed the injection.
    """
    rq_worker_process(count=2, env={"RACELAB_INJECT": inject_env})

    run_async_import_under_reader(concurrently, race_history, project, user, [
        (Upload("doc.pdf", pdf_bytes(PAGES)), PAGES), (json_upload("batch.json", BATCH), BATCH)])

    check(race_checker, final_state(project, expected_tasks(race_history)), *PDF_INVARIANTS)
    starts = [hit for hit in remote_sync_points.trace if hit.point == "rq.job.start"
              and not hit.actor.startswith(f"{os.getpid()}:")]
    jobs = 1 + settings.IMPORT_PDF_PAGE_JOBS
    assert len(starts) == jobs, f"the workers started {len(starts)} jobs, not run_import and the page jobs ({jobs})"
    held = [hit for hit in starts if any(inject_env in action for action in hit.actions)] if inject_env else []
    assert len(held) == (len(starts) if inject_env else 0), (
        f"{len(held)} of the workers' {len(starts)} job starts were held by RACELAB_INJECT={inject_env!r}: "
        f"e.g. {starts[0]}")
