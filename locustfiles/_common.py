"""Define the base load user: import, follow the import to its end, check what shows, time it.

:class:`ImportUser` is abstract; each scenario module subclasses it with tasks
that build a :class:`~racelab.locustfiles._payloads.Batch` and call :meth:`ImportUser.run_import`.
It speaks HTTP only (no Django), so it runs against the bundled server and
against upstream Label Studio alike; where the target lacks a field or an
endpoint it says so once and checks what it can. Every wait is bounded by
``--import-deadline``: a user never blocks past it. To a racelab target each
import carries an ``Idempotency-Key`` (one per import, kept for its retries),
and an import the target did not answer (dropped connection, 502/503/504) is
sent again, as :mod:`~racelab.locustfiles._retry` decides; to upstream Label
Studio, which would import twice, an import is sent once.
"""
import json
import random
import sys
import time

from locust import FastHttpUser, between, events

from racelab.locustfiles import _checks as checks
from racelab.locustfiles._observations import DISPLAY_METRIC, install, observations, record_anomaly, record_display
from racelab.locustfiles._project import HTTP_TIMEOUT, body_start, json_body, open_ledger, probe_target
from racelab.locustfiles._retry import (IDEMPOTENCY_HEADER, MAX_ATTEMPTS, RETRYABLE_STATUSES, fault_name,
                                        new_idempotency_key, next_wait)
from racelab.locustfiles._settings import MISSING_TOKEN, add_arguments, load_settings, require_token
from racelab.locustfiles._watch import watching

# Seconds between reads while waiting: every 100 ms for the first two seconds (time-to-display is
# measured to within a tenth of a second, well inside its 500 ms gate), then every half second.
POLL_FAST, POLL_FAST_FOR, POLL_SLOW = 0.1, 2.0, 0.5
VALIDATORS_KEPT = 64  # ETags a user keeps (the reads of its last few imports), so a long run's memory stays flat
RETRIED_IMPORT = "/api/projects/[id]/import [retry]"  # the stats row of import attempts that were sent again
IMPORT_WAIT = 5  # seconds a racelab target may hold an async import's 201 until the import is final (?wait=)
FINAL = ("completed", "failed")


def is_sync_answer(body):
    """Return whether an import's answer ``body`` is a sync import's: upstream's counts without an ``import`` to
    poll. An async import's 201 that waited until the import was final has counts too, with its ``import``."""
    return "import" not in body or ("task_count" in body and "poll_url" not in body)


def poll_delay(waited):
    """Return how long to wait before the next read, ``waited`` seconds into a wait."""
    return POLL_FAST if waited < POLL_FAST_FOR else POLL_SLOW


@events.init_command_line_parser.add_listener
def _add_options(parser, **kwargs):
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment, **kwargs):
    if not load_settings(environment).token:
        sys.exit(f"racelab: {MISSING_TOKEN}")  # once, before any user starts, instead of once per user
    install(environment)


class ImportUser(FastHttpUser):
    """A user that imports into its own project and verifies every import (abstract).

    Subclasses set ``sync_weight`` / ``async_weight`` (the mode is drawn per
    import; ``--async-ratio`` overrides both), ``shared_project`` (all users of
    the class in one process import into one project), ``project_total_check``
    (``False`` skips reading the project's total where the per-file counts can
    be checked, to halve the reads), ``display_metric`` (the name
    time-to-display is recorded under) and ``pause`` (the think time between
    imports; ``--think-time`` overrides it).
    """

    abstract = True
    # geventhttpclient, not requests: Locust's CPU at 100 users fell from 6.5 to 3.8 s per 40 s, left to the app.
    network_timeout = connection_timeout = HTTP_TIMEOUT
    pause = between(0.5, 2.0)
    sync_weight = 1
    async_weight = 1
    shared_project = False
    project_total_check = True
    display_metric = DISPLAY_METRIC

    def on_start(self):
        """Authenticate, probe the target once per process, and create (or join) the project."""
        self.settings = load_settings(self.environment)
        self.client.auth_header = f"Token {require_token(self.settings)}"  # sent with every request
        self.obs = observations(self.environment)
        self.racelab_target = probe_target(self)
        self.ledger = open_ledger(self)
        self.known_uploads = set()  # file uploads of earlier imports: the watcher leaves them alone
        self.validators = {}  # (path, query) -> (ETag, JSON) of the last 200 that carried an ETag

    def wait_time(self):
        """Pause between imports: ``--think-time`` if given, else the scenario's own ``pause``."""
        think = self.settings.think_time
        return random.uniform(*think) if think else self.pause()

    # -- the flow -------------------------------------------------------------------------

    def run_import(self, batch):
        """Import ``batch``, follow it to the end, check what shows, and time its display.

        Return ``True`` when its tasks showed with the right count before the
        deadline. A misbehaving target is recorded (HTTP failure or anomaly),
        never raised; a bad batch returns ``False`` once its 400 is judged.
        """
        started = time.monotonic()
        with watching(self, batch):
            submitted = self._submit(batch, self._pick_mode(), started)
        if submitted is None:
            return False
        mode, ids, reported = submitted
        self.known_uploads.update(ids)
        if ids and not batch.bad:
            self.obs.record_sent(self.ledger.project_id, ids, batch.expected_tasks)
        reported_wrong = reported is not None and reported != batch.expected_tasks
        if reported_wrong:
            record_anomaly(self.environment, "task_count_mismatch",
                           f"{mode} import of {batch.label} reported {reported} tasks, sent {batch.expected_tasks}")
        if not ids and batch.files:  # a JSON-body import has no file upload, upstream and here alike
            self.obs.notice("target returned no file_upload_ids for a file import: checking project totals only")
        return self._await_display(batch, ids, started, mode, reported_wrong)

    def _submit(self, batch, mode, started):
        """Send the import and follow it to its end; return ``(mode, file upload ids, reported count)``.

        Return ``None`` when there is nothing to check: a bad file (judged), a
        failed request, or an async import that failed or stuck (recorded).
        """
        body = self._post_import(batch, mode, started)
        if body is None:
            if not batch.bad:
                self.ledger.unsure(batch.expected_tasks)  # the failed request may have written
            return None
        if is_sync_answer(body):
            self.obs.count("imports_sync")
            if mode == "async":
                self.obs.notice("target answered ?async=true with a sync import: it picks the mode itself")
            return "sync", body.get("file_upload_ids") or [], body.get("task_count")
        self.obs.count("imports_async")
        if mode == "sync":
            self.obs.notice("target answered ?async=false with an async import: it picks the mode itself")
        state = self._follow(body, batch, started)
        if state is None:  # stuck: it may still write later
            self.ledger.unsure(batch.expected_tasks)
            return None
        if state.get("status") == "failed":  # failed: it must have written nothing
            return None
        return "async", state.get("file_upload_ids") or body.get("file_upload_ids") or [], state.get("task_count")

    def _post_import(self, batch, mode, started):
        """POST the import; return the target's JSON body, or ``None`` (a bad file judged, or a failure recorded).

        To a racelab target every attempt carries the import's one
        Idempotency-Key, and an attempt the target did not answer is sent again
        until :func:`~racelab.locustfiles._retry.next_wait` says stop (attempts,
        or ``--import-deadline`` counted from ``started``). Such an attempt is a
        success in the ``[retry]`` row and counted (``import_retries``,
        ``import_retries_after_<fault>``), so the import's own row holds one
        request per import, whose outcome is the import's. Upstream gets no key
        and one attempt.
        """
        path = f"/api/projects/{self.ledger.project_id}/import?async={'true' if mode == 'async' else 'false'}"
        if mode == "async" and self.racelab_target:  # its 201 then comes when the import is final: no poll
            path += f"&wait={IMPORT_WAIT}"
        name = f"/api/projects/[id]/import [{'bad file' if batch.bad else mode}]"
        payload = {"files": batch.multipart()} if batch.files else {"json": batch.tasks}
        headers = {IDEMPOTENCY_HEADER: new_idempotency_key()} if self.racelab_target else {}
        deadline, attempt = started + self.settings.import_deadline, 1
        while True:
            with self.client.post(path, name=name, headers=headers, catch_response=True, **payload) as resp:
                wait = self._retry_wait(resp, attempt, deadline) if headers else None
                if wait is None:
                    return self._judge_import(resp, batch, attempt)
                resp.request_meta["name"] = RETRIED_IMPORT  # known only now: the name Locust reports it under
                resp.success()
            attempt += 1
            time.sleep(wait)  # gevent's sleep under Locust: other users run meanwhile

    def _retry_wait(self, resp, attempt, deadline):
        """Return the seconds to wait before sending ``resp``'s request again (counted), or ``None`` not to."""
        headers = resp.headers or {}
        wait = next_wait(resp.status_code, headers.get("Retry-After"), attempt, time.monotonic(), deadline)
        if wait is not None:
            self.obs.count("import_retries")
            self.obs.count(f"import_retries_after_{fault_name(resp.status_code)}")
        elif resp.status_code in RETRYABLE_STATUSES:
            self.obs.count("import_retries_exhausted")
        return wait

    def _judge_import(self, resp, batch, attempt):
        """Judge the import's last attempt: return its JSON body, or ``None`` with the failure recorded."""
        if batch.bad:
            self._judge_bad(resp, batch)
            return None
        tries = f" (attempt {attempt})" if attempt > 1 else ""
        if resp.status_code == 422 and self.racelab_target:  # racelab's answer to a key sent with another request
            resp.success()  # the exchange worked; the anomaly judges it
            record_anomaly(self.environment, "idempotency_key_reused",
                           f"import of {batch.label}{tries} answered 422 to its own key: {body_start(resp)}")
            return None
        if resp.status_code == 0:
            resp.failure(f"import of {batch.label} got no answer{tries}: {getattr(resp, 'error', None)!r}")
            return None
        body = json_body(resp, (200, 201), f"import of {batch.label}{tries} ")
        if body is None:
            return None
        resp.success()
        return body if isinstance(body, dict) else {}

    def _judge_bad(self, resp, batch):
        self.obs.count("bad_files")
        if resp.status_code == 400:
            resp.success()
            return
        if 200 <= resp.status_code < 300:
            resp.success()  # the HTTP exchange worked; what follows judges the import
            if self._failed_in_background(resp, batch):
                return
            self.ledger.resync(self._project_total())
        else:
            resp.failure(f"bad file {batch.label} answered {resp.status_code}")
        record_anomaly(self.environment, "bad_file_accepted",
                       f"{batch.label} ({batch.files[0].name!r}) answered {resp.status_code}, expected 400")

    def _failed_in_background(self, resp, batch):
        """Return True when an async import of a bad file ended ``failed`` with an error naming the file.

        Upstream's contract, and ours: an async import checks content in its job,
        so a broken file is accepted (201) and its import fails with the reason.
        """
        try:
            body = resp.json()
        except ValueError:
            return False
        if not isinstance(body, dict) or is_sync_answer(body):
            return False
        state = self._follow(body, batch, time.monotonic(), expect_failure=True)
        name = batch.files[0].name
        if state and state.get("status") == "failed" and name in (state.get("error") or ""):
            self.obs.count("bad_files_failed_async")
            return True
        return False

    def _follow(self, body, batch, started, expect_failure=False):
        """Poll the async import until it is final; return its last state, or ``None`` if it stuck.

        A 201 that waited (``?wait=``) and says the import is final is that state: nothing is polled.
        A ``failed`` import is an anomaly unless ``expect_failure`` (a bad file's import).
        """
        poll = body.get("poll_url")
        if not poll:
            if self.racelab_target:
                record_anomaly(self.environment, "no_poll_url", f"async import response {body} has no poll_url")
            else:
                self.obs.notice("target's async import response has no poll_url (upstream Label Studio): "
                                "polling /api/projects/{id}/imports/{import} instead")
            poll = f"/api/projects/{self.ledger.project_id}/imports/{body.get('import')}"
        # A target that offers it (poll_wait) answers the poll when the import is final: one read, not one per delay.
        wait = body.get("poll_wait") if isinstance(body.get("poll_wait"), (int, float)) else 0
        params, name = ({"wait": f"{wait:g}"}, "/api/projects/[id]/imports/[id]?wait") if wait > 0 else (
            None, "/api/projects/[id]/imports/[id]")
        deadline, since, state = started + self.settings.import_deadline, time.monotonic(), {}
        answered = body.get("status") in FINAL
        while True:
            asked = time.monotonic()
            polled = body if answered else self._get_json(poll, name, params=params, what="polling the import ")
            state = polled if isinstance(polled, dict) else state
            status = state.get("status")
            if status == "completed":
                self.obs.count("jobs_completed")
                return state
            if status == "failed":
                if not expect_failure:
                    self.obs.count("jobs_failed")
                    record_anomaly(self.environment, "import_failed",
                                   f"import {body.get('import')} of {batch.label}: {state.get('error')}")
                return state
            delay = poll_delay(time.monotonic() - since)
            if time.monotonic() + delay > deadline:
                self.obs.count("jobs_stuck")
                record_anomaly(self.environment, "stuck_import",
                               f"import {body.get('import')} of {batch.label} still {status!r} after {self.settings.import_deadline:g}s")
                return None
            time.sleep(max(0.0, delay - (time.monotonic() - asked)))  # a poll that waited has waited already

    def _await_display(self, batch, ids, started, mode, reported_wrong=False):
        """Read until the import's tasks show right; record the first read's findings as anomalies.

        Time-to-display is recorded under ``display_metric``; the gated small-file
        figure also under ``time_to_display [sync|async]``, to tell where a slow tail comes from.
        """
        deadline, since, first = started + self.settings.import_deadline, time.monotonic(), True
        while True:
            expected = self.ledger.confirmed + batch.expected_tasks
            verdict = self._inspect(batch, ids)
            wanted = self.project_total_check or not ids or (verdict is not None and not verdict.has_task_count)
            seen = self._project_total() if wanted else expected
            if verdict is None or seen is None:  # the read itself failed; Locust has the failure
                findings = None
            else:
                findings = list(verdict.findings)
                finding = checks.check_project_total(seen, expected, self.shared_project, self.ledger.slack)
                findings += [finding] if finding else []
                if first:
                    self._count_check(findings, reported_wrong)
                    for found in findings:
                        record_anomaly(self.environment, found.anomaly, f"{batch.label}: {found.detail}")
                    first = False
                if not findings:
                    self.ledger.confirm(batch.expected_tasks)
                    elapsed = time.monotonic() - started
                    record_display(self.environment, elapsed, self.display_metric)
                    if self.display_metric == DISPLAY_METRIC:
                        record_display(self.environment, elapsed, f"{DISPLAY_METRIC} [{mode}]")
                    self._count_statuses(verdict)
                    return True
            delay = poll_delay(time.monotonic() - since)
            if time.monotonic() + delay > deadline:
                if verdict is not None:
                    self.obs.count("stuck_files", verdict.pending)
                    self._count_statuses(verdict)
                record_anomaly(self.environment, "never_displayed",
                               f"{batch.label}: not shown right after {self.settings.import_deadline:g}s: "
                               + "; ".join(f.detail for f in findings or []))
                self.ledger.unsure(batch.expected_tasks)
                return False
            time.sleep(delay)

    def _inspect(self, batch, ids):
        """Read the file-upload list once and judge it; ``None`` if the read failed."""
        if not ids:
            return checks.FileUploadVerdict()
        params = {} if batch.pages else {"ids": json.dumps(ids)}  # PDFs: pages are not in ``ids``
        rows = self._get_json(f"/api/projects/{self.ledger.project_id}/file-uploads",
                              "/api/projects/[id]/file-uploads", params=params)
        if not isinstance(rows, list):
            return None
        verdict = checks.check_file_uploads(rows, ids, batch.files, batch.expected_tasks)
        if not verdict.has_task_count:
            self.obs.notice("target's file-upload list has no per-file task_count (upstream Label Studio): "
                            "checking task totals through the project's task_number instead")
        if not verdict.has_status:
            self.obs.notice("target's file-upload list has no status: cannot tell 'processing' from '0 tasks'")
        if batch.pages and not verdict.findings:
            verdict.findings += checks.check_pages(rows, set(ids), batch.pages)
            if not any(row.get("parent") in ids for row in rows):
                self.obs.notice("target lists no page file uploads for PDFs: checking the PDF's total only")
        return verdict

    # -- helpers --------------------------------------------------------------------------

    def _project_total(self):
        """Return the project's task total (``task_number``, else ``/api/tasks`` total), or ``None``."""
        project = self._get_json(f"/api/projects/{self.ledger.project_id}", "/api/projects/[id]")
        if isinstance(project, dict) and "task_number" in project:
            return project["task_number"]
        if project is None:
            return None
        self.obs.notice("target's project has no task_number: reading the total from /api/tasks")
        tasks = self._get_json("/api/tasks", "/api/tasks", params={"project": self.ledger.project_id, "page_size": 1})
        return tasks.get("total") if isinstance(tasks, dict) else None

    def _get_json(self, path, name, params=None, what=""):
        """GET ``path`` and return its JSON, or ``None`` (recorded as a failure); a 304 returns the last JSON again.

        The cheapest read the target offers: where it sent an ETag for this
        path and query, the read sends it back as ``If-None-Match`` and a 304
        means "unchanged" (counted as ``not_modified``). A target that sends no
        ETag, upstream Label Studio among them, gets plain reads. A read that got
        no answer or a 502/503/504 is sent again as an import is (``locustfiles._retry``),
        on any target: a read changes nothing.
        """
        key = (path, tuple(sorted((params or {}).items())))
        etag, last = self.validators.get(key, (None, None))
        headers = {"If-None-Match": etag} if etag else {}
        deadline = time.monotonic() + self.settings.import_deadline
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self.client.get(path, name=name, params=params, headers=headers, catch_response=True) as resp:
                wait = next_wait(resp.status_code, (resp.headers or {}).get("Retry-After"), attempt,
                                 time.monotonic(), deadline)
                if wait is None:
                    return self._judge_read(resp, key, etag, last, what)
                resp.request_meta["name"] = f"{name} [retry]"  # a read is safe to send again, on any target
                resp.success()
                self.obs.count("read_retries")
            time.sleep(wait)  # gevent's sleep under Locust: other users run meanwhile

    def _judge_read(self, resp, key, etag, last, what):
        """Return the JSON of a read's last attempt (the stored one for a 304), or ``None`` with the failure recorded."""
        if resp.status_code == 304 and etag:
            resp.success()
            self.obs.count("not_modified")
            return last
        body = json_body(resp, (200,), what)
        if body is None:
            return None
        if resp.headers.get("ETag"):
            self.validators.pop(key, None)
            self.validators[key] = (resp.headers["ETag"], body)
            if len(self.validators) > VALIDATORS_KEPT:
                del self.validators[next(iter(self.validators))]  # the least recently stored
        return body

    def _count_check(self, findings, reported_wrong):
        self.obs.count("checks")
        if reported_wrong or any(f.anomaly in checks.COUNT_ANOMALIES for f in findings):
            self.obs.count("count_mismatches")

    def _count_statuses(self, verdict):
        for status in verdict.statuses:
            self.obs.status(status)

    def _pick_mode(self):
        ratio = self.settings.async_ratio
        if ratio is not None:
            return "async" if random.random() < ratio else "sync"
        return random.choices(("sync", "async"), weights=(self.sync_weight, self.async_weight))[0]
