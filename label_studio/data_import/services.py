"""The import flow: every transaction boundary and every dispatch, in one module.

Read top to bottom: the synchronous import (one transaction), the async import
(the request's transaction, then the ``run_import`` job, one transaction per
file upload), the PDF fan-out and its atomic fan-in, the finalisation of an
import, and the reconciler that recovers lost or crashed jobs. Each fix flag of
:mod:`label_studio.core.fixes` is read here and nowhere else.

Views call :func:`sync_import`, :func:`start_async_import` and
:func:`file_uploads_for_listing`; workers run the ``@job`` functions.
"""
import hashlib
import itertools
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from label_studio.core.events import event
from label_studio.core.fixes import fix_enabled
from label_studio.core.jobs import (
    REQUEST_JOB_PREFIX, QueueUnreachable, abandoned_jobs, current_holder, held_by_a_request, holder_alive, job,
    live_jobs, live_workers, redis_configured, require_queue, start_job_async_or_sync,
)
from racelab import race_point
from label_studio.data_import.finality import announce_final, wait_until_final
from label_studio.data_import.models import FileUpload, ImportRequest, ProjectImport
from label_studio.data_import.parsers import (
    BODY, BadImport, check_file_name, check_size, check_tasks, display_name, page_text, parse_tasks, pdf_pages,
    single_page_pdf,
)
from label_studio.projects.models import Project
from label_studio.tasks.bulk import insert_tasks
from label_studio.tasks.models import Task

BATCH_SIZE = 500  # with fix R10 off, tasks per commit
SAMPLE_SIZE = 100  # tasks (of the files, and of the JSON body) whose keys make a finished import's data_columns


@dataclass
class Upload:
    """One uploaded file: its name as the user sent it and its bytes."""

    name: str
    content: bytes


@dataclass
class Parsed:
    """What parsing a set of uploads found, before anything is written."""

    tasks_by_upload: list = field(default_factory=list)  # [(Upload, [task dicts] or PdfReader)]
    found_formats: dict = field(default_factory=dict)
    data_columns: set = field(default_factory=set)

    def task_count(self):
        """Return how many tasks the uploads make: a PDF one per page."""
        return sum(len(tasks[1]) if isinstance(tasks, tuple) else len(tasks) for _, tasks in self.tasks_by_upload)


# --- synchronous import -----------------------------------------------------------------------


def sync_import(project, user, uploads, body_tasks=None, return_task_ids=False, idempotency=None):
    """Import ``uploads`` (and ``body_tasks``) into ``project`` in the request; return upstream's response dict.

    Everything is parsed before the first write; a BadImport leaves no row and
    no stored file behind. The file uploads, their tasks and their status change
    commit together (fix R1): a reader sees all of a file's tasks or none of it.
    With ``return_task_ids`` the response also lists the new tasks' ids, as
    upstream's ``?return_task_ids=true`` does. With ``idempotency``, a
    ``(key, fingerprint)`` pair, it runs once per key (:func:`import_once`).
    """
    started = time.monotonic()
    parsed = parse_uploads(uploads, body_tasks)
    event("import.sync_started", project_id=project.id, files=len(uploads))
    # Before any transaction, in one autocommitted UPDATE: reserved inside one (import_once's with a key), the
    # project's row would stay locked to its commit, and every other import into the project would wait for it.
    # SQLite has no row locks: each writer holds the whole database to its commit, so there the ids are
    # reserved inside the transaction, one write transaction fewer.
    early = fix_enabled("R1") and connections[router.db_for_write(Project)].vendor != "sqlite"
    inner_ids = _reserve_inner_ids(project.id, parsed.task_count()) if early else None

    def write():
        return _write_sync_import(project, user, parsed, inner_ids, return_task_ids, started)

    return write() if idempotency is None else import_once(project, user, *idempotency, write)


def _write_sync_import(project, user, parsed, inner_ids, return_task_ids, started):
    """Store the files and tasks of ``parsed`` (see :func:`sync_import`); return the response dict."""
    stored = []
    try:
        if fix_enabled("R1"):
            with transaction.atomic():
                file_uploads = _create_file_uploads(project, user, parsed, stored)
                race_point("import.file_uploads_created", file_upload_ids=_ids(file_uploads))
                if inner_ids is None:
                    inner_ids = _reserve_inner_ids(project.id, parsed.task_count())
                task_ids = _create_all_tasks(project, parsed, file_uploads, inner_ids)
        else:
            file_uploads = _create_file_uploads(project, user, parsed, stored)
            race_point("import.after_upload_commit", file_upload_ids=_ids(file_uploads))
            inner_ids = _reserve_inner_ids(project.id, parsed.task_count())
            with transaction.atomic():
                task_ids = _create_all_tasks(project, parsed, file_uploads, inner_ids)
    except BaseException:
        _delete_stored(stored)
        raise
    race_point("import.sync_committed", file_upload_ids=_ids(file_uploads))
    event("import.sync_committed", project_id=project.id, file_upload_ids=_ids(file_uploads),
          task_count=len(task_ids))
    all_tasks = [task for _, tasks in parsed.tasks_by_upload if isinstance(tasks, list) for task in tasks]
    response = {
        "task_count": len(task_ids),
        "annotation_count": _count_key(all_tasks, "annotations"),
        "prediction_count": _count_key(all_tasks, "predictions"),
        "duration": round(time.monotonic() - started, 4),
        "file_upload_ids": _ids(file_uploads),
        "could_be_tasks_list": any(name in (".csv", ".tsv", ".txt") for name in parsed.found_formats),
        "found_formats": parsed.found_formats,
        "data_columns": sorted(parsed.data_columns),
    }
    if return_task_ids:
        response["task_ids"] = task_ids
    return response


def parse_uploads(uploads, body_tasks=None):
    """Validate and parse every upload; raise BadImport at the first bad one, having written nothing."""
    parsed = Parsed()
    for upload in uploads:
        check_file_name(upload.name)
        check_size(upload.name, len(upload.content))
        extension = os.path.splitext(upload.name)[1].lower()
        if extension == ".pdf":
            reader = pdf_pages(upload.name, upload.content)
            texts = [page_text(display_name(upload.name), page, n) for n, page in enumerate(reader.pages, 1)]
            parsed.tasks_by_upload.append((upload, (reader, texts)))
            parsed.data_columns.update(("text", "page"))
        else:
            tasks = parse_tasks(upload.name, upload.content)
            parsed.tasks_by_upload.append((upload, tasks))
            for task in tasks:
                parsed.data_columns.update(task["data"])
        parsed.found_formats[extension] = parsed.found_formats.get(extension, 0) + 1
    if body_tasks is not None:
        tasks = check_tasks(BODY, body_tasks)
        parsed.tasks_by_upload.append((None, tasks))
        for task in tasks:
            parsed.data_columns.update(task["data"])
    if not parsed.tasks_by_upload:
        raise BadImport("the request", "no files and no tasks were sent.", "Attach files as 'file' or post a JSON list of tasks.")
    return parsed


def _create_file_uploads(project, user, parsed, stored):
    """Create a file upload row per parsed file (None for the request body, which has no row)."""
    return [_create_file_upload(project, user, upload, stored) if upload else None for upload, _ in parsed.tasks_by_upload]


def _ids(file_uploads):
    return [fu.id for fu in file_uploads if fu is not None]


def _create_all_tasks(project, parsed, file_uploads, inner_ids):
    """Create the tasks of every parsed upload and complete its file upload; return the new tasks' ids."""
    task_ids = []
    for fu, (upload, tasks) in zip(file_uploads, parsed.tasks_by_upload):
        if fu is not None and fu.format == ".pdf":
            reader, texts = tasks
            task_ids += _create_pdf_pages_inline(project, fu, reader, texts, inner_ids)
        else:
            task_ids += _create_tasks(project.id, fu, tasks, inner_ids)
            if fu is not None:
                _mark_completed(fu)
    return task_ids


def _create_pdf_pages_inline(project, parent, reader, texts, inner_ids):
    """Create one page file upload and one task per page, complete them and the parent; return the tasks' ids."""
    pages = _create_page_uploads(parent, reader.pages)
    page_tasks = [(page, _page_task(parent, page.page_number, text)) for page, text in zip(pages, texts)]
    task_ids = _insert_tasks(project.id, page_tasks, inner_ids)
    _mark_completed(*pages)
    FileUpload.objects.filter(id=parent.id).update(
        is_parent_document=True, pages_total=len(texts), pages_done=len(texts))
    _mark_completed(parent)
    return task_ids


# --- async import: the request ----------------------------------------------------------------


def start_async_import(project, user, uploads, body_tasks=None, idempotency=None, client_waits=False):
    """Record an async import and dispatch ``run_import`` on commit; return the ProjectImport.

    Only cheap checks run in the request (names, formats, sizes, the body's
    shape); content errors end the import ``failed`` with its message. The job
    id is pre-assigned and stored in the same transaction. No other job is
    scheduled: a job lost between commit and enqueue leaves the import
    ``created`` with a job Redis does not hold, which the periodic reconciler
    (fix R8, :func:`reconcile`) re-dispatches.
    When Redis does not answer before anything is written, raise
    ImportsUnavailable and store nothing; when the enqueue fails after the
    commit, the import records it (:func:`_wait_for_dispatch`) and the
    reconciler sends it again once Redis is back. With ``idempotency``, a
    ``(key, fingerprint)`` pair, it runs once per key (:func:`import_once`).

    ``client_waits`` says that the client holds the request until the import
    is final (``?wait=N``). An import of at most ``IMPORT_RUN_IN_REQUEST_BYTES``
    then runs in this request after the same commit, not through Redis and a
    worker (``in_request`` of the dispatcher): the client would only wait for
    the worker, and the worker's dequeue, bookkeeping and second read of the
    rows cost more than the import. Its claims, fences and transactions are the
    job's; a request killed meanwhile is recovered like a dead worker
    (:func:`reconcile`). An import with a PDF goes to workers: its pages are
    split over parallel jobs, and `racelab bench` measured its fan-out in the
    request costing more than in a worker (stack CPU 1.15–1.36 of 57fbbd1's, against 0.95).
    """
    for upload in uploads:
        check_file_name(upload.name)
        check_size(upload.name, len(upload.content))
    if body_tasks is not None:
        body_tasks = check_tasks(BODY, body_tasks)
    if not uploads and body_tasks is None:
        raise BadImport("the request", "no files and no tasks were sent.", "Attach files as 'file' or post a JSON list of tasks.")
    queue_name = import_queue(uploads, body_tasks)
    try:
        require_queue(queue_name)
    except QueueUnreachable as exc:
        event("import.refused_queue_unreachable", level=logging.ERROR, project_id=project.id, error=str(exc))
        raise ImportsUnavailable() from exc

    in_request = (client_waits and _import_bytes(uploads, body_tasks) <= settings.IMPORT_RUN_IN_REQUEST_BYTES
                  and not any(os.path.splitext(upload.name)[1].lower() == ".pdf" for upload in uploads))

    def record():
        return _record_async_import(project, user, uploads, body_tasks, queue_name, in_request)

    return record() if idempotency is None else import_once(project, user, *idempotency, record)


def _record_async_import(project, user, uploads, body_tasks, queue_name, in_request):
    """Store the async import and its files, its job dispatched on commit (see :func:`start_async_import`)."""
    stored = []
    try:
        with transaction.atomic():
            project_import = ProjectImport.objects.create(project=project, user=user, tasks=body_tasks)
            project_import.queue_name = queue_name  # for async_response: not a column, Redis has it with the job
            file_uploads = [_create_file_upload(project, user, upload, stored, project_import) for upload in uploads]
            project_import.file_upload_ids = [fu.id for fu in file_uploads]
            # On commit, not after this block: an Idempotency-Key's transaction (import_once) may enclose this one.
            # First: an import run in this request runs in the next commit hook.
            transaction.on_commit(lambda: _announce_async_import(project_import))
            project_import.job_id = start_job_async_or_sync(
                run_import, project_import.id, queue_name=queue_name, in_request=in_request,
                on_enqueue_failed=lambda exc: _wait_for_dispatch(project_import, exc))
            project_import.save(update_fields=["file_upload_ids", "job_id"])
            race_point("import.async_before_commit", import_id=project_import.id)
    except BaseException:
        _delete_stored(stored)
        raise
    return project_import


class ImportsUnavailable(Exception):
    """Raised when an async import cannot be accepted because its job queue (Redis) does not answer."""

    def __init__(self):
        super().__init__(
            "The job queue (Redis) does not answer, so this import cannot start; nothing was stored. "
            f"Send it again in {settings.IMPORT_RETRY_AFTER_SECONDS} seconds, or without ?async=true to import it "
            "in this request.")


def _announce_async_import(project_import):
    race_point("import.async_committed", import_id=project_import.id)
    event("import.async_created", import_id=project_import.id, project_id=project_import.project_id,
          file_upload_ids=project_import.file_upload_ids, job_id=project_import.job_id)


WAITING_FOR_DISPATCH = ("Waiting for dispatch: the job queue (Redis) could not take this import. It starts by itself "
                        "when the queue is back; nothing needs to be sent again.")


def _wait_for_dispatch(project_import, exc):
    """Record on import ``project_import`` that its job could not be enqueued after its commit (``exc``).

    Its status stays ``created`` (a status clients know); its ``error`` says it
    waits, and :func:`dispatch_waiting_imports` sends it once Redis answers.
    """
    now = timezone.now()
    ProjectImport.objects.filter(id=project_import.id, status=ProjectImport.CREATED).update(
        enqueue_failed_at=now, error=WAITING_FOR_DISPATCH, updated_at=now)
    project_import.enqueue_failed_at, project_import.error = now, WAITING_FOR_DISPATCH


def import_queue(uploads, body_tasks=None):
    """Return the queue of an async import: ``high`` when it is small, else ``default``.

    Workers take ``high`` first, so a few small files never wait behind
    someone else's 1000-task batch or 50-page PDF. Small means at most
    ``IMPORT_SMALL_BYTES`` of files and request body together.
    """
    return "high" if _import_bytes(uploads, body_tasks) <= settings.IMPORT_SMALL_BYTES else "default"


def _import_bytes(uploads, body_tasks):
    return sum(len(upload.content) for upload in uploads) + (len(json.dumps(body_tasks)) if body_tasks else 0)


DISPATCH_STATES = ("queued", "waiting_for_worker", "waiting_for_dispatch")  # the 201's ``dispatch``
WAITING_FOR_WORKER = "Queued, waiting for a worker: no worker is running now. It starts when one does."


def async_response(project_import, wait=0):
    """Return the async import's 201 body: what to poll and how far it is (fix R7).

    Besides upstream's keys, ``dispatch`` (one of ``DISPATCH_STATES``) and
    ``detail`` say whether the job is queued with a live worker to take it,
    queued with none alive, or not yet queued because Redis was down; neither
    is there when the job has started or, without Redis, ran inline. With
    Redis, ``poll_wait`` is the longest ``?wait=`` that ``poll_url`` takes: such
    a poll answers as soon as the import is final, or after that many seconds.
    With ``wait`` (seconds, after the commit) the request itself first waits so:
    ``project_import`` is read again once its job has made it final, and the
    body then says ``completed`` or ``failed``, so the client need not poll.
    """
    if not fix_enabled("R7"):
        return {"import": project_import.id}
    if project_import.status not in ProjectImport.FINAL and wait_until_final(project_import.id, wait):
        project_import.refresh_from_db(fields=[field.attname for field in ProjectImport._meta.concrete_fields
                                               if field.name != "tasks"])
    body = {
        "import": project_import.id,
        "status": project_import.status,
        "file_upload_ids": project_import.file_upload_ids,
        "poll_url": f"/api/projects/{project_import.project_id}/imports/{project_import.id}",
    }
    if redis_configured():
        body["poll_wait"] = settings.IMPORT_POLL_WAIT_MAX_SECONDS
    if project_import.status != ProjectImport.CREATED or not redis_configured():  # no Redis: it ran inline
        return body
    if project_import.enqueue_failed_at is not None:
        return body | {"dispatch": "waiting_for_dispatch", "detail": project_import.error}
    try:
        workers = live_workers(import_queue_of(project_import))
    except Exception:  # Redis went away since the enqueue: say nothing rather than guess; the poll will tell
        return body
    if not workers:
        return body | {"dispatch": "waiting_for_worker", "detail": WAITING_FOR_WORKER}
    return body | {"dispatch": "queued"}


def import_queue_of(project_import):
    """Return the queue the job of ``project_import`` was sent to (the ``high`` queue when unknown).

    The request that made it noted it on the instance (``queue_name``); a replayed import is looked up in Redis.
    """
    from label_studio.core import jobs

    if getattr(project_import, "queue_name", None):
        return project_import.queue_name
    if project_import.job_id and redis_configured():
        for name in ("high", "default"):
            if jobs.queue(name).fetch_job(project_import.job_id) is not None:
                return name
    return "high"


# --- Idempotency-Key ----------------------------------------------------------------------------


class IdempotencyKeyReused(Exception):
    """Raised when an Idempotency-Key comes back with a different request than the one it was first sent with."""

    def __init__(self, key):
        super().__init__(
            f"The Idempotency-Key {key!r} was already used for a different import request (other files, tasks or "
            "options) in this project. Send a new key for a new import, or resend exactly the first request.")


def request_fingerprint(uploads, body_tasks, **options):
    """Return a hash of an import request: its files' names and bytes, its JSON body and ``options``."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for upload in uploads:
        digest.update(hashlib.sha256(upload.name.encode("utf-8", "surrogateescape")).digest())
        digest.update(hashlib.sha256(upload.content).digest())
    digest.update(json.dumps(body_tasks, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def import_once(project, user, key, fingerprint, start):
    """Run ``start()`` — the writes of :func:`sync_import` or :func:`start_async_import` — once per ``key``.

    Return its result.

    The import and its ImportRequest row commit in one transaction, and the
    row's unique constraint lets only one of two concurrent requests with one
    key commit: the other rolls back everything it did (stored files included)
    and returns the first one's result — the same response for a sync import,
    the same ProjectImport for an async one. A key whose row expired
    (``IMPORT_IDEMPOTENCY_KEY_HOURS``) starts a new import. Raise
    IdempotencyKeyReused when the key was used with another fingerprint.
    """
    mine = ImportRequest.objects.filter(user=user, project=project, key=key)
    race_point("import.idempotency_started", key=key)
    try:
        with transaction.atomic():
            mine.filter(created_at__lt=_idempotency_cutoff()).delete()
            record = ImportRequest.objects.create(user=user, project=project, key=key, fingerprint=fingerprint)
            race_point("import.idempotency_key_claimed", key=key)
            result = start()
            if isinstance(result, ProjectImport):
                record.project_import = result
            else:
                record.response = result
            record.save(update_fields=["project_import", "response"])
            race_point("import.idempotency_recorded", key=key)
        return result
    except IntegrityError:
        record = mine.select_related("project_import").first()
        if record is None:  # not our key's constraint
            raise
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    event("import.idempotent_replay", project_id=project.id, key=key, import_id=record.project_import_id)
    return record.project_import if record.project_import_id else record.response


def _idempotency_cutoff():
    return timezone.now() - timedelta(hours=settings.IMPORT_IDEMPOTENCY_KEY_HOURS)


# --- async import: the jobs -------------------------------------------------------------------


@job
def run_import(import_id):
    """Import the files of ProjectImport ``import_id``: one transaction per file upload.

    The job claims the import with a conditional update (fix R9); a doubled or
    retried job finds it claimed and does nothing. A file upload already
    claimed is skipped, so a re-run after a crash only does what is left. A file
    whose transaction fails (a database error) fails alone, with a message for
    the user: the other files still import, and the job re-raises the first such
    error once the import is final, so RQ records it as failed.
    """
    if fix_enabled("R9"):
        project_import = _claim_import(import_id)
        if project_import is None:
            _log_unclaimable(import_id)
            return
    else:
        try:
            project_import = ProjectImport.objects.get(id=import_id)
        except ProjectImport.DoesNotExist:
            race_point("import.job_row_missing", import_id=import_id)
            event("import.job_row_missing", level=logging.ERROR, import_id=import_id)
            return
        project_import.status = ProjectImport.IN_PROGRESS
        project_import.save(update_fields=["status", "updated_at"])
    race_point("import.job_claimed", import_id=import_id)
    try:
        if project_import.tasks and not project_import.task_count:
            inner_ids = _reserve_inner_ids(project_import.project_id, len(project_import.tasks))
            with transaction.atomic():
                if _fence_body(import_id, project_import.attempts):
                    _create_tasks(project_import.project_id, None, project_import.tasks, inner_ids)
                    _count_on_import(import_id, project_import.tasks)
        file_uploads = FileUpload.objects.filter(project_import_id=import_id, parent=None)
        errors = []
        for file_upload in file_uploads.order_by("id"):
            try:
                _process_file_upload(file_upload)
            except Exception as exc:
                errors.append(exc)
                _fail_file_upload(file_upload, exc)
    except Exception as exc:
        _fail_import(import_id, exc)
        raise
    _finish_import_if_done(import_id)
    if errors:
        raise errors[0]


def _claim_import(import_id):
    """Move import ``import_id`` from ``created`` to ``in_progress`` and count the attempt (fix R9); return it, or None.

    None when it is not ``created``: another job has it, or it is gone. The
    claim clears a "waiting for dispatch" mark. One ``UPDATE … RETURNING`` gives the
    columns this job reads (the finish reads the row again, locked): Django's ``update()``
    returns no row, and a read after it was a second statement in every import.
    """
    connection = connections[router.db_for_write(ProjectImport)]
    table, quote = connection.ops.quote_name(ProjectImport._meta.db_table), connection.ops.quote_name
    now = ProjectImport._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    claimed = ProjectImport.objects.raw(
        f"UPDATE {table} SET {quote('status')} = %s, {quote('attempts')} = {quote('attempts')} + 1, "
        f"{quote('updated_at')} = %s, {quote('enqueue_failed_at')} = NULL, {quote('error')} = NULL "
        f"WHERE {quote('id')} = %s AND {quote('status')} = %s "
        f"RETURNING {quote('id')}, {quote('project_id')}, {quote('attempts')}, {quote('tasks')}, {quote('task_count')}",
        [ProjectImport.IN_PROGRESS, now, import_id, ProjectImport.CREATED])
    return next(iter(list(claimed)), None)  # list(): read to the end, so the cursor closes now


def _log_unclaimable(import_id):
    status = ProjectImport.objects.filter(id=import_id).values_list("status", flat=True).first()
    if status is None:
        race_point("import.job_row_missing", import_id=import_id)
        event("import.job_row_missing", level=logging.ERROR, import_id=import_id)
    else:
        event("import.job_duplicate_skipped", import_id=import_id, status=status)


def _claim(file_upload_id):
    """Claim one file upload for this job; return the claim's token, or None when another job has it (fix R9)."""
    return _claim_all([file_upload_id]).get(file_upload_id)


def _claim_all(file_upload_ids):
    """Claim file uploads for this job in one UPDATE; return ``{id: token}`` of those it got (fix R9).

    Those another job holds are left out. Each claim writes a new token, which
    the unit's commit checks first (:func:`_fence`), and the RQ worker and job
    holding it, which the reconciler asks RQ about (fix R12).
    """
    uploads = FileUpload.objects.filter(id__in=file_upload_ids)
    if fix_enabled("R9"):
        uploads = uploads.filter(claimed_at=None)
    token = uuid.uuid4()
    claimed = uploads.update(claimed_at=timezone.now(), claim_token=token, claimed_by=current_holder(),
                             status=FileUpload.PROCESSING if fix_enabled("R5") else F("status"))
    if claimed == len(set(file_upload_ids)):  # every row matched: all ours, no second read
        got = set(file_upload_ids)
    else:
        got = set(FileUpload.objects.filter(id__in=file_upload_ids, claim_token=token).values_list("id", flat=True))
    for file_upload_id in file_upload_ids:
        race_point("import.file_upload_claimed", file_upload_id=file_upload_id, claimed=file_upload_id in got)
    return {file_upload_id: token for file_upload_id in file_upload_ids if file_upload_id in got}


def _fence(tokens):
    """Return the ids of ``tokens`` (``{file_upload_id: claim token}``) whose claim this job still holds (fix R12).

    Call it first in the transaction that commits the units: its one
    ``SELECT … FOR UPDATE`` keeps the rows locked (PostgreSQL, in id order;
    SQLite's write lock, taken at ``BEGIN IMMEDIATE``) until that commit, so no
    release or new claim slips in between. A claim released and taken by
    another job since has another token: that unit is left to it. Fix R12 off:
    every id, unchecked.
    """
    if not fix_enabled("R12") or not tokens:
        return set(tokens)
    still_ours = Q()
    for file_upload_id, token in tokens.items():
        still_ours |= Q(id=file_upload_id, claim_token=token)
    held = set(FileUpload.objects.select_for_update().filter(still_ours).order_by("id").values_list("id", flat=True))
    for file_upload_id in sorted(set(tokens) - held):
        event("import.claim_taken_over", level=logging.WARNING, file_upload_id=file_upload_id)
    return held


def _complete_under_claim(file_upload, token):
    """Mark ``file_upload`` completed if this job still holds its claim ``token``; return whether it does.

    :func:`_fence` and :func:`_mark_completed` in one UPDATE, first in the unit's
    transaction: the row stays locked until the tasks inserted after it commit
    with it, and a rollback undoes both. A failed upload is neither completed
    nor given tasks. Fix R12 off: completed unchecked.
    """
    if not fix_enabled("R12"):
        _mark_completed(file_upload)
        return True
    if _mark_completed(file_upload, claim_token=token):
        return True
    event("import.claim_taken_over", level=logging.WARNING, file_upload_id=file_upload.id)
    return False


def _fence_body(import_id, attempt):
    """Return whether this job may commit the import's JSON-body tasks: still its ``attempt`` and none committed.

    The body's :func:`_fence`: each claim of the import counts an attempt, so a
    job whose worker was taken for dead and whose import was claimed again
    commits nothing when it resumes. The UPDATE holds the import's row until
    the commit. Fix R12 off: always True.
    """
    if not fix_enabled("R12"):
        return True
    if ProjectImport.objects.filter(id=import_id, attempts=attempt, task_count=0).update(updated_at=timezone.now()):
        return True
    event("import.claim_taken_over", level=logging.WARNING, import_id=import_id)
    return False


def _process_file_upload(file_upload):
    """Parse one file upload and commit its tasks with its completion, or mark it failed.

    A PDF already fanned out is left to its page jobs: a re-run never splits it twice.
    """
    token = None if file_upload.is_parent_document else _claim(file_upload.id)
    if token is None:
        return
    name = file_upload.file_name
    try:
        content = _read(file_upload)
        if file_upload.format == ".pdf":
            _fan_out_pdf(file_upload, pdf_pages(name, content), token)
            return
        tasks = parse_tasks(name, content)
    except BadImport as exc:
        _mark_failed(file_upload.id, str(exc))
        return
    race_point("import.file_upload_parsed", file_upload_id=file_upload.id, tasks=len(tasks))
    project_id = file_upload.project_id
    inner_ids = _reserve_inner_ids(project_id, len(tasks))
    if fix_enabled("R10") and fix_enabled("R1"):
        with transaction.atomic():
            if not _complete_under_claim(file_upload, token):
                return
            count = len(_create_tasks(project_id, file_upload, tasks, inner_ids))
            _count_on_import(file_upload.project_import_id, tasks)
    elif not fix_enabled("R1"):
        _mark_completed(file_upload)
        race_point("import.status_committed_before_tasks", file_upload_id=file_upload.id)
        with transaction.atomic():
            count = len(_create_tasks(project_id, file_upload, tasks, inner_ids))
        _count_on_import(file_upload.project_import_id, tasks)
    else:
        count = 0
        for start in range(0, len(tasks), BATCH_SIZE):
            with transaction.atomic():
                count += len(_create_tasks(project_id, file_upload, tasks[start:start + BATCH_SIZE], inner_ids))
            race_point("import.task_batch_committed", file_upload_id=file_upload.id, tasks=count)
        _mark_completed(file_upload)
        _count_on_import(file_upload.project_import_id, tasks)
    event("import.tasks_committed", import_id=file_upload.project_import_id, file_upload_id=file_upload.id,
          task_count=count)


def _count_on_import(import_id, tasks):
    """Add ``tasks``' task, annotation and prediction counts to the import, by ``F()`` (no lost update)."""
    ProjectImport.objects.filter(id=import_id).update(
        task_count=F("task_count") + len(tasks),
        annotation_count=F("annotation_count") + _count_key(tasks, "annotations"),
        prediction_count=F("prediction_count") + _count_key(tasks, "predictions"),
        updated_at=timezone.now())


def _count_key(tasks, key):
    return sum(len(task.get(key) or []) for task in tasks)


def _fan_out_pdf(parent, reader, token):
    """Create one pending page upload per page and dispatch them to ``process_pdf_pages`` jobs, on commit.

    The pages are split into at most ``IMPORT_PDF_PAGE_JOBS`` jobs of neighbouring
    pages: jobs in parallel finish a document sooner, but more jobs than workers
    only add each job's own cost. Page jobs go to the ``default`` queue: workers
    take ``high`` first, so a small import is not stuck behind someone else's PDF.
    """
    with transaction.atomic():
        if not _fence({parent.id: token}):
            return
        pages = _create_page_uploads(parent, reader.pages)
        FileUpload.objects.filter(id=parent.id).update(is_parent_document=True, pages_total=len(pages))
        for job_id, group in itertools.groupby(pages, key=lambda page: page.job_id):
            start_job_async_or_sync(process_pdf_pages, [page.id for page in group], queue_name="default", job_id=job_id)
    race_point("import.pdf_fanned_out", file_upload_id=parent.id, pages=len(pages))
    event("import.pdf_fanned_out", import_id=parent.project_import_id, file_upload_id=parent.id, pages=len(pages))


def _split(items, parts):
    """Split ``items`` into at most ``parts`` runs of neighbours, as even as can be."""
    bounds = [len(items) * n // parts for n in range(parts + 1)]
    return [items[low:high] for low, high in zip(bounds, bounds[1:]) if high > low]


@job
def process_pdf_pages(page_ids):
    """Create the tasks of some pages of one PDF, complete the pages and count them on their parent.

    Each page is claimed first (fix R9): a page another job holds is left to it.
    The pages' tasks, their final status and their count on the parent commit
    together. With fix R3 the parent's counter moves by ``F()`` under a row lock
    and the job that brings it to ``pages_total`` finalises the parent, in that
    same transaction: parent ``completed`` ⇔ every page is final.
    """
    pages = list(FileUpload.objects.filter(id__in=page_ids).order_by("id"))
    for page_id in sorted(set(page_ids) - {page.id for page in pages}):
        race_point("import.job_row_missing", file_upload_id=page_id)
        event("import.job_row_missing", level=logging.ERROR, file_upload_id=page_id)
    if not pages:
        return
    # Read before the claims: the stale copy that fix R3 off writes back. By its key, not joined to
    # the pages: PostgreSQL merge-joined that through the whole table for the newest parent.
    parent = FileUpload.objects.get(id=pages[0].parent_id)
    for page in pages:
        page.parent = parent
    tokens = _claim_all([page.id for page in pages])
    pages = [page for page in pages if page.id in tokens]
    if not pages:
        return
    extracted = [(page, *_extract_page(page)) for page in pages]
    inner_ids = _reserve_inner_ids(pages[0].project_id, sum(error is None for _, _, error in extracted))
    with transaction.atomic():
        held = _fence(tokens)
        extracted = [(page, text, error) for page, text, error in extracted if page.id in held]
        if not extracted:
            return
        done = [(page, _page_task(parent, page.page_number, text)) for page, text, error in extracted if error is None]
        _insert_tasks(pages[0].project_id, done, inner_ids)
        _mark_completed(*[page for page, _ in done])
        for page, _, error in extracted:
            if error is not None:
                _mark_failed(page.id, error)
        finalised = _count_pages_on_parent(parent, len(extracted))
    if finalised:
        _finish_import_if_done(parent.project_import_id)


def _extract_page(page):
    """Return ``(text, None)`` for a page upload's text, or ``(None, error)`` when it cannot be read."""
    try:
        result = page_text(display_name(page.parent.file_name), pdf_pages(page.file_name, _read(page)).pages[0],
                           page.page_number), None
    except BadImport as exc:
        result = None, str(exc)
    race_point("pdf.page_extracted", file_upload_id=page.id, parent_id=page.parent_id)
    return result


def _count_pages_on_parent(parent, count):
    """Count ``count`` final pages on their parent; finalise the parent when they are the last; return True then.

    ``parent`` was read when the job started: fix R3 off writes that stale copy
    back. With the fix, the ``F()`` update takes the parent's row lock until
    commit, so the counts read after it are this job's pages and every earlier one's.
    """
    race_point("pdf.before_parent_update", parent_id=parent.id, pages=count)
    if fix_enabled("R3"):
        FileUpload.objects.filter(id=parent.id).update(pages_done=F("pages_done") + count)
        parent.pages_done, parent.pages_total = FileUpload.objects.values_list("pages_done", "pages_total").get(
            id=parent.id)
    else:
        parent.pages_done += count
        parent.save(update_fields=["pages_done"])
    race_point("pdf.after_parent_update", parent_id=parent.id, pages_done=parent.pages_done)
    if parent.pages_done < parent.pages_total:
        return False
    failed = list(parent.pages.filter(status=FileUpload.FAILED).values_list("page_number", flat=True))
    if failed:
        _mark_failed(parent.id, f"{display_name(parent.file_name)}: page(s) {', '.join(map(str, failed))} failed.")
    else:
        _mark_completed(parent)
    event("import.pdf_finalised", file_upload_id=parent.id, pages=parent.pages_total, failed_pages=failed)
    return True


def _finish_import_if_done(import_id):
    """Move the import to ``completed`` or ``failed`` once all its file uploads are final; else do nothing.

    The contract of an import some of whose files failed (say 49 good, 1 bad):
    its status is ``failed``, its ``task_count`` is the tasks that were
    committed (the good files'), and its ``error`` names each failed file and
    its problem, says how many files were imported, and asks to upload only the
    failed files again. Each file commits in its own transaction (fix R10), so a
    bad file cannot undo the good ones; upstream Label Studio parses everything
    first and fails the whole import, so a client that reads only ``status``
    must still see that something did not arrive — ``completed`` would tell it
    every file is in. The per-file truth is in the poll's ``files`` and
    ``failed_files`` and in the file-upload list, which the file manager shows.
    A client that re-sends the whole import on ``failed`` would import the good
    files twice, so the error says to re-send only the failed ones. Nothing is
    rolled back, and a failed file's stored bytes are deleted
    (:func:`_mark_failed`); its row stays, with its message.
    """
    if import_id is None:
        return
    with transaction.atomic():
        try:  # get(), not first(): no ORDER BY to compile for a lookup by key; only what is read, the rest is written
            project_import = ProjectImport.objects.select_for_update().only("status", "tasks", "created_at").get(
                id=import_id)
        except ProjectImport.DoesNotExist:
            return
        if project_import.status in ProjectImport.FINAL:
            return
        uploads = list(FileUpload.objects.filter(project_import_id=import_id, parent=None).only(
            "status", "is_parent_document", "pages_done", "pages_total", "original_name", "file", "error_message"))
        if any(fu.status not in FileUpload.FINAL or fu.pages_done < fu.pages_total for fu in uploads):
            return
        failed = [fu.error_message for fu in uploads if fu.status == FileUpload.FAILED]
        tasks = Task.objects.filter(file_upload_id__in=_with_pages(uploads))
        sample = list(tasks.values_list("data", flat=True)[:SAMPLE_SIZE])
        # A sample short of SAMPLE_SIZE holds every task: count it, not the table again.
        file_task_count = len(sample) if len(sample) < SAMPLE_SIZE else tasks.count()
        project_import.task_count = file_task_count + len(project_import.tasks or [])
        formats = [fu.format for fu in uploads]
        project_import.found_formats = {fmt: formats.count(fmt) for fmt in sorted(set(formats))}
        project_import.could_be_tasks_list = any(fmt in (".csv", ".tsv", ".txt") for fmt in formats)
        sample += [task["data"] for task in (project_import.tasks or [])[:SAMPLE_SIZE]]
        project_import.data_columns = sorted({key for data in sample for key in data})
        project_import.status = ProjectImport.FAILED if failed else ProjectImport.COMPLETED
        project_import.error = _import_error(failed, len(uploads), project_import.task_count)
        project_import.finished_at = timezone.now()
        project_import.duration = (project_import.finished_at - project_import.created_at).total_seconds()
        project_import.save(update_fields=[
            "task_count", "found_formats", "could_be_tasks_list", "data_columns", "status", "error", "finished_at",
            "duration", "updated_at"])
        transaction.on_commit(lambda: announce_final(import_id))
    race_point("import.finished", import_id=import_id, status=project_import.status)
    event("import.finished", import_id=import_id, status=project_import.status, task_count=project_import.task_count,
          duration=project_import.duration)


def _with_pages(uploads):
    """Return the ids of ``uploads`` and of their PDF pages: index lookups, where an OR across joins scans the table."""
    parent_ids = [fu.id for fu in uploads if fu.is_parent_document]
    page_ids = FileUpload.objects.filter(parent_id__in=parent_ids).values_list("id", flat=True) if parent_ids else []
    return [fu.id for fu in uploads] + list(page_ids)


def _import_error(failed_messages, files, task_count):
    """Return the error of an import whose files' errors are ``failed_messages`` (None when none failed)."""
    if not failed_messages:
        return None
    imported = files - len(failed_messages)
    if not imported:
        return "\n".join(failed_messages)
    return (f"{len(failed_messages)} of {files} files failed; the other {imported} were imported ({task_count} tasks). "
            "Upload only the failed files again:\n" + "\n".join(failed_messages))


SERVER_ERROR = ("the server could not save its tasks (the cause is in the server log, under import {import_id}). "
                "Upload it again; if that fails too, tell your administrator.")


def _fail_file_upload(file_upload, exc):
    """Fail ``file_upload`` after the unexpected error ``exc`` of its transaction: the message names it, ``exc`` is logged."""
    event("import.file_upload_error", level=logging.ERROR, import_id=file_upload.project_import_id,
          file_upload_id=file_upload.id, error=f"{type(exc).__name__}: {exc}")
    message = SERVER_ERROR.format(import_id=file_upload.project_import_id)
    _mark_failed(file_upload.id, f"{display_name(file_upload.file_name)}: {message}")


def _fail_import(import_id, exc):
    """Fail import ``import_id`` after the unexpected error ``exc``: users read what failed and what to do, never SQL.

    Its files not yet final are failed (their stored bytes deleted); completed
    files keep their tasks, and PDF pages are left to their own jobs. ``exc``
    itself goes to the log, under the import's id.
    """
    event("import.failed", level=logging.ERROR, import_id=import_id, error=f"{type(exc).__name__}: {exc}")
    unfinished = FileUpload.objects.filter(project_import_id=import_id, parent=None, is_parent_document=False).exclude(
        status__in=FileUpload.FINAL).only("original_name", "file")
    for fu in unfinished:
        _mark_failed(fu.id, f"{display_name(fu.file_name)}: {SERVER_ERROR.format(import_id=import_id)}")
    if ProjectImport.objects.filter(id=import_id).exclude(status__in=ProjectImport.FINAL).update(
            status=ProjectImport.FAILED, error=f"Import failed: {SERVER_ERROR.format(import_id=import_id)}",
            finished_at=timezone.now()):
        transaction.on_commit(lambda: announce_final(import_id))


# --- rows: file uploads and tasks ---------------------------------------------------------------


def _create_file_upload(project, user, upload, stored, project_import=None):
    """Create and store the file upload row for ``upload``; record the stored name in ``stored``."""
    status = FileUpload.PENDING if fix_enabled("R5") else FileUpload.COMPLETED
    fu = FileUpload(project=project, user=user, original_name=upload.name, status=status, project_import=project_import)
    fu.file.save(f"{uuid.uuid4().hex[:8]}-{upload.name}", ContentFile(upload.content), save=False)
    stored.append(fu.file.name)
    race_point("import.file_stored", stored_name=fu.file.name)
    fu.save()
    return fu


def _create_page_uploads(parent, pages):
    """Store each page of ``parent`` as a one-page PDF and insert its file upload row; return the rows.

    Each row records the job that will process it: pages are split into at most
    ``IMPORT_PDF_PAGE_JOBS`` jobs of neighbouring pages, each with its own job id.
    """
    stem = os.path.splitext(parent.file_name)[0]
    status = FileUpload.PENDING if fix_enabled("R5") else FileUpload.COMPLETED
    groups = _split(range(len(pages)), settings.IMPORT_PDF_PAGE_JOBS)
    job_ids = [job_id for group in groups for job_id in [uuid.uuid4().hex] * len(group)]
    rows = []
    for number, page in enumerate(pages, 1):
        row = FileUpload(project_id=parent.project_id, user_id=parent.user_id, parent=parent, page_number=number,
                         original_name=f"{stem}-page-{number}.pdf", status=status,
                         project_import_id=parent.project_import_id, job_id=job_ids[number - 1])
        row.file.save(f"{uuid.uuid4().hex[:8]}-{row.original_name}", ContentFile(single_page_pdf(page)), save=False)
        rows.append(row)
    return FileUpload.objects.bulk_create(rows)


def _page_task(parent, number, text):
    return {"data": {"text": text, "page": number, "pdf": parent.file_name}}


def _create_tasks(project_id, file_upload, tasks, inner_ids):
    """Insert ``tasks`` of ``file_upload`` (None for a request body) for project ``project_id``; return their ids."""
    return _insert_tasks(project_id, [(file_upload, task) for task in tasks], inner_ids)


def _insert_tasks(project_id, tasks, inner_ids):
    """Insert ``(file_upload, task)`` pairs for project ``project_id``; return the tasks' ids.

    Each task takes the next of ``inner_ids``, an iterator from :func:`_reserve_inner_ids`.
    It takes the project's id, not the project: a job has the id on its rows and reads no project row for it.
    """
    if not tasks:  # e.g. every page of a page job failed
        return []
    rows = [
        {"project_id": project_id, "file_upload_id": file_upload.id if file_upload else None, "data": task["data"],
         "meta": {key: task[key] for key in ("annotations", "predictions", "meta") if key in task},
         "inner_id": inner_id}
        for (file_upload, task), inner_id in zip(tasks, itertools.islice(inner_ids, len(tasks)))
    ]
    task_ids = insert_tasks(rows)
    uploads = {row["file_upload_id"] for row in rows}
    race_point("import.tasks_created", file_upload_id=uploads.pop() if len(uploads) == 1 else None, tasks=len(rows))
    return task_ids


def _reserve_inner_ids(project_id, count):
    """Return an iterator over ``count`` unused inner ids of the project, for the next transaction that inserts tasks.

    Jobs and sync imports call it before that transaction (and before
    ``import_once``'s; on SQLite, which has no row locks, a sync import calls it
    inside): with fix R11 the project's row is then locked for the one
    UPDATE that advances its counter, not for the whole insert, so concurrent
    imports into one project do not queue behind each other's tasks. Ids
    reserved for a transaction that rolls back, or for a request that turns out
    to be a replay of its Idempotency-Key, stay unused, as a sequence's do; no
    id is ever given twice. Fix R11 off: the ids after the project's highest, read unlocked.
    """
    if not count:
        return iter(())
    if fix_enabled("R11"):
        start = _advance_next_inner_id(project_id, count) - count
    else:
        start = (Task.objects.filter(project_id=project_id).aggregate(top=Max("inner_id"))["top"] or 0) + 1
        race_point("import.inner_ids_read", project_id=project_id, start=start)
    return iter(range(start, start + count))


def _advance_next_inner_id(project_id, count):
    """Add ``count`` to the project's ``next_inner_id`` and return the new value; the row stays locked until commit.

    One ``UPDATE … RETURNING`` (PostgreSQL, SQLite 3.35+): Django's ``update()`` returns no value, and
    a locking read before it was a second round trip in every import.
    """
    connection = connections[router.db_for_write(Project)]
    table, column = connection.ops.quote_name(Project._meta.db_table), connection.ops.quote_name("next_inner_id")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = {column} + %s WHERE {connection.ops.quote_name('id')} = %s "
                       f"RETURNING {column}", [count, project_id])
        return cursor.fetchone()[0]


def _mark_completed(*file_uploads, claim_token=None):
    """Mark ``file_uploads`` completed, but a failed one; with ``claim_token``, only while it holds that claim.

    Return how many rows it marked.
    """
    uploads = FileUpload.objects.filter(id__in=[fu.id for fu in file_uploads]).exclude(status=FileUpload.FAILED)
    if claim_token is not None:
        uploads = uploads.filter(claim_token=claim_token)
    return uploads.update(status=FileUpload.COMPLETED, tasks_created_at=timezone.now())


def _mark_failed(file_upload_id, message):
    """Fail a file upload not yet completed, with ``message`` for the user; delete its stored file once this commits.

    The row stays (the file manager lists it with ``message``); the bytes go,
    as nothing reads a failed upload again. Its ``file`` is cleared with the
    status, so no row points at a deleted file; a rollback keeps both.
    """
    stored = FileUpload.objects.filter(id=file_upload_id).values_list("file", flat=True).first()
    if FileUpload.objects.filter(id=file_upload_id).exclude(status=FileUpload.COMPLETED).update(
            status=FileUpload.FAILED, error_message=message, file=""):
        if stored:
            transaction.on_commit(lambda: _delete_stored([stored]))
    event("import.file_upload_failed", file_upload_id=file_upload_id, error=message)


def _read(file_upload):
    with file_upload.file.open("rb") as handle:
        return handle.read()


def _delete_stored(names):
    from django.core.files.storage import default_storage

    for name in names:
        default_storage.delete(name)


# --- reading ------------------------------------------------------------------------------------


def file_uploads_for_listing(project, ids=None, owner=None):
    """Return the project's file uploads with ``task_count``, counted in the query (fix R6).

    ``project`` is a Project or its id; with ``owner`` (a user), none unless
    they own it, in the same query. With fix R6 off the count is cached per
    file upload on first read and never refreshed — the "0 tasks" bug.
    """
    uploads = FileUpload.objects.filter(project=project).order_by("id")
    if owner is not None:
        uploads = uploads.filter(project__created_by=owner)  # as Project.for_user
    if ids is not None:
        uploads = uploads.filter(Q(id__in=ids) | Q(parent_id__in=ids))
    return _with_listed_count(uploads)


def file_uploads_of_import(import_id):
    """Return the uploaded files of import ``import_id`` (not PDF pages), by id, with ``task_count``.

    The count is the one :func:`file_uploads_for_listing` shows (with fix R6 off,
    its cached one too): an import's status that says its files show tells the
    client what the file-upload list would, so it need not read the list.
    """
    uploads = FileUpload.objects.filter(project_import_id=import_id, parent=None).order_by("id")
    return _with_listed_count(uploads.only("id", "original_name", "status", "error_message"))


def _with_listed_count(uploads):
    listed = list(uploads.with_task_count())
    if not fix_enabled("R6"):
        for fu in listed:
            key = f"file_upload:{fu.id}:task_count"
            fu.task_count = cache.get_or_set(key, fu.task_count, timeout=None)
    return listed


# --- recovery -----------------------------------------------------------------------------------


@job
def reconcile_all():
    """Run :func:`reconcile` over every import (the periodic job of :mod:`label_studio.data_import.cron`)."""
    return reconcile()


def reconcile(stuck_after=None, lost_after=None, dead_after=None):
    """Re-dispatch lost jobs and release stale claims; return what was done.

    Fix R8 re-dispatches an import still ``created`` past ``lost_after`` seconds
    whose recorded job Redis no longer holds (lost between commit and enqueue,
    or ended before its claim), recording the new job on the import, and a PDF
    page whose job is lost likewise (:func:`_redispatch_pages`). Fix R10 releases stale claims and
    re-dispatches their imports and pages: with fix R12 a claim is stale as
    soon as RQ shows its worker dead (:func:`_claim_is_stale`), and a live
    worker keeps its claim however slow; the ``stuck_after`` timeout is for
    claims RQ cannot tell about. Fix R12 also re-dispatches an ``in_progress``
    import whose job RQ shows abandoned (:func:`jobs.abandoned_jobs`): a JSON
    body, or a job between two files, holds no file claim to release. An
    import whose job is still queued or running is left to it, under
    ``waiting``: a backlog gets no extra jobs. The jobs' claims make a
    re-dispatch of a live job harmless all the same.

    ``stuck_after`` defaults to ``IMPORT_STUCK_AFTER_SECONDS``, ``lost_after`` to
    ``IMPORT_LOST_AFTER_SECONDS`` and never exceeds ``stuck_after``, ``dead_after``
    (a worker's heartbeat age) to ``IMPORT_WORKER_DEAD_AFTER_SECONDS``. Every query
    filters on a status index to the few unfinished rows.
    """
    race_point("import.reconcile_started")
    stuck_after = settings.IMPORT_STUCK_AFTER_SECONDS if stuck_after is None else stuck_after
    dead_after = settings.IMPORT_WORKER_DEAD_AFTER_SECONDS if dead_after is None else dead_after
    lost_after = min(settings.IMPORT_LOST_AFTER_SECONDS if lost_after is None else lost_after, stuck_after)
    now = timezone.now()
    stuck_cutoff, lost_cutoff = now - timedelta(seconds=stuck_after), now - timedelta(seconds=lost_after)
    done = {"imports": [], "pages": [], "released": [], "waiting": []}
    done.update(sweep())  # first: an import it re-sends is recorded as just sent, so the lost-job check skips it
    restarted, released_imports = [], set()
    if fix_enabled("R10"):
        # A released upload keeps its status (it never moves backwards); the next claim takes it again.
        # A fanned-out PDF parent is not stale: its pages finish it.
        claimed = FileUpload.objects.filter(claimed_at__isnull=False, is_parent_document=False,
                                            status__in=FileUpload.ACTIVE)
        for fu in claimed.only("id", "claimed_at", "claim_token", "claimed_by", "project_import_id", "parent_id"):
            # Still this claim and still active: a unit that committed meanwhile is not released (its row lock held us).
            if _claim_is_stale(fu, stuck_cutoff, dead_after) and FileUpload.objects.filter(
                    id=fu.id, claim_token=fu.claim_token, claimed_at=fu.claimed_at,
                    status__in=FileUpload.ACTIVE).update(claimed_at=None, claim_token=None, claimed_by=""):
                done["released"].append(fu.id)
                if fu.parent_id is None:
                    released_imports.add(fu.project_import_id)
        if fix_enabled("R12"):  # a job whose worker died between two files, or in a JSON body, holds no file claim
            # Judged by the app's own dead-after, not by `dead_after`: a caller that takes every claim for stale
            # (R12's scenario) must not also send every running import again on each sweep.
            in_progress = ProjectImport.objects.filter(status=ProjectImport.IN_PROGRESS)
            rows = list(in_progress.values_list("job_id", "id", "updated_at"))
            running = {job_id: import_id for job_id, import_id, _ in rows}
            released_imports.update(running[job_id] for job_id in abandoned_jobs(running))
            # A request sends no heartbeat: its import is a lease of a dead worker's time (killed, or too slow).
            lapsed = now - timedelta(seconds=settings.IMPORT_WORKER_DEAD_AFTER_SECONDS)
            released_imports.update(import_id for job_id, import_id, updated_at in rows
                                    if job_id.startswith(REQUEST_JOB_PREFIX) and updated_at < lapsed)
        stalled = ProjectImport.objects.filter(Q(updated_at__lt=stuck_cutoff) | Q(id__in=released_imports),
                                               status=ProjectImport.IN_PROGRESS)
        restarted = list(stalled.values_list("id", flat=True))
        ProjectImport.objects.filter(id__in=restarted, status=ProjectImport.IN_PROGRESS).update(
            status=ProjectImport.CREATED)
    if fix_enabled("R8") or fix_enabled("R10"):
        created = list(ProjectImport.objects.filter(Q(updated_at__lt=lost_cutoff) | Q(id__in=restarted),
                                                    status=ProjectImport.CREATED)
                       .order_by("id").values_list("id", "job_id"))
        live = live_jobs((job_id for import_id, job_id in created if import_id not in restarted), dead_after)
        for import_id, job_id in created:
            if job_id in live:
                done["waiting"].append(import_id)
                continue
            job_id = uuid.uuid4().hex  # recorded first: the next sweep finds this job, not the lost one
            if not ProjectImport.objects.filter(id=import_id, status=ProjectImport.CREATED).update(job_id=job_id):
                continue  # claimed since we read it: its job was alive after all
            start_job_async_or_sync(run_import, import_id, queue_name="high", job_id=job_id)
            done["imports"].append(import_id)
        done["pages"] = _redispatch_pages(stuck_cutoff, lost_cutoff, done["released"], dead_after)
    race_point("import.reconciled", **done)
    event("import.reconciled", **done)
    return done


def _redispatch_pages(stuck_cutoff, lost_cutoff, released, dead_after):
    """Send PDF pages whose job is lost again, one job per lost job; return the pages' ids.

    A page is sent again when its claim was just ``released``, when it is unclaimed
    past ``lost_cutoff`` and Redis no longer holds its recorded job as live
    (:func:`live_jobs`: e.g. popped by a worker that was then stopped), or when it
    is unclaimed past ``stuck_cutoff`` (a page without a recorded job). A page
    whose job is still queued is left to it: a backlog gets no extra jobs.
    """
    pages = list(FileUpload.objects.filter(Q(created_at__lt=lost_cutoff) | Q(id__in=released), parent__isnull=False,
                                           status__in=FileUpload.ACTIVE, claimed_at=None)
                 .order_by("job_id", "id").values_list("id", "job_id", "created_at"))
    live = live_jobs({job_id for page_id, job_id, _ in pages if page_id not in released}, dead_after)

    def is_lost(page_id, job_id, created_at):
        if page_id in released:
            return True
        return job_id not in live if job_id else created_at < stuck_cutoff

    sent = []
    for _, group in itertools.groupby(pages, key=lambda page: page[1]):
        lost = [page[0] for page in group if is_lost(*page)]
        if not lost:
            continue
        job_id = uuid.uuid4().hex  # recorded first: the next reconcile looks this job up, not the lost one
        FileUpload.objects.filter(id__in=lost, status__in=FileUpload.ACTIVE).update(job_id=job_id)
        start_job_async_or_sync(process_pdf_pages, lost, queue_name="default", job_id=job_id)
        sent += lost
    return sent


def sweep():
    """Send the imports Redis could not take, and delete what killed requests and jobs left; return what was done.

    Runs with every periodic :func:`reconcile`; only the re-send is fix R8's (the leftovers are not races).
    """
    from label_studio.data_import import leftovers

    return {"dispatched": dispatch_waiting_imports() if fix_enabled("R8") else [], **leftovers.sweep_leftovers(),
            "expired_keys": ImportRequest.objects.filter(created_at__lt=_idempotency_cutoff()).delete()[0]}


def dispatch_waiting_imports():
    """Send ``run_import`` again for each import whose enqueue failed (see :func:`_wait_for_dispatch`); return their ids.

    An import that fails again stays waiting; one that is sent loses its
    waiting mark and message. Its job's claim makes a doubled send harmless.
    """
    sent = []
    for project_import in ProjectImport.objects.filter(status=ProjectImport.CREATED, enqueue_failed_at__isnull=False):
        failed, job_id = [], uuid.uuid4().hex
        start_job_async_or_sync(run_import, project_import.id, queue_name="high", job_id=job_id,
                                on_enqueue_failed=failed.append)
        if failed:
            break  # Redis is still down: the next reconcile tries again
        ProjectImport.objects.filter(id=project_import.id, enqueue_failed_at=project_import.enqueue_failed_at).update(
            enqueue_failed_at=None, error=None, job_id=job_id, updated_at=timezone.now())
        sent.append(project_import.id)
    return sent


def _claim_is_stale(file_upload, stuck_cutoff, dead_after):
    """Return True when ``file_upload``'s claim is stale: its RQ worker is dead (its heartbeat older than ``dead_after``
    seconds, fix R12), else when it is older than ``stuck_cutoff``.

    A request that runs its own import sends no heartbeat: its claim is stale
    once older than ``dead_after`` (fix R12). The timeout is only for a claim
    RQ cannot tell about (no worker recorded, or Redis unreachable); with fix
    R12 off it is the only test.
    """
    if fix_enabled("R12"):
        if held_by_a_request(file_upload.claimed_by):
            return file_upload.claimed_at < timezone.now() - timedelta(seconds=dead_after)
        alive = holder_alive(file_upload.claimed_by, dead_after)
        if alive is not None:
            return not alive
    return file_upload.claimed_at < stuck_cutoff
