"""Serve a tiny in-memory imitation of the import API on 127.0.0.1, with switchable faults.

Only what the load users call is imitated, just well enough to judge them:
projects, sync/async imports (multipart or JSON body), import status, the
file-upload list with ``?ids=``, the project's ``task_number`` and the health
endpoint. It honours ``Idempotency-Key`` as racelab does: the key again with the
same request gets the first answer back, with another request a 422 (upstream
ignores the header). Nothing is persisted and no Django is involved. Faults
are plain attributes on :class:`StubState`, read at request time.
"""
import email.parser
import email.policy
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BAD_SUFFIXES = (".exe",)


@dataclass
class StubState:
    """The stub's data and its fault switches (all off: a correct racelab server)."""

    upstream: bool = False          # no health endpoint, no task_count/status, no poll_url
    count_offset: int = 0           # added to every file upload's reported task_count
    zero_after_done: bool = False   # file uploads report 0 tasks although completed
    async_never_completes: bool = False
    accept_bad_files: bool = False
    processing_reads: int = 0       # this many file-upload reads show "processing" first
    fault_every: int = 1            # count faults hit only file uploads whose id is a multiple of this
    sync_delay: float = 0.0         # a sync import holds its response this long, its tasks not yet in…
    late_status: str = "processing"  # …while its file upload shows this status ("completed": the R1 bug)
    in_progress_polls: int = 0      # an async import's first this many polls show "in_progress"
    reset_polls: int = 0            # this many polls of an import's status are dropped unanswered first
    unavailable_polls: int = 0      # then this many answer 503 with ``retry_after`` (Redis down at the target)
    etags: bool = False             # import status and file-upload list send ETags and answer If-None-Match
    waits: bool = False             # an async import sent with ?wait= is answered final, as racelab's
    stale_etags: bool = False       # …with one ETag for every answer: a 304 that hides every change
    # An import's n-th attempt (counted per Idempotency-Key; a POST without one is always a first) meets
    # import_faults[n], if any: "reset" (connection dropped unanswered), "reset_after_import" (imported,
    # then dropped), or a status such as "503" (502/503/504 carry ``retry_after`` unless it is None).
    import_faults: list = field(default_factory=list)
    retry_after: str | None = "0"
    import_attempts: list = field(default_factory=list)  # (Idempotency-Key or None, time.monotonic()) per import POST
    keyed: dict = field(default_factory=dict)  # Idempotency-Key -> (fingerprint, status, body) of its first answer
    projects: dict = field(default_factory=dict)
    uploads: dict = field(default_factory=dict)
    imports: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    revalidations: list = field(default_factory=list)  # (path, answered status) of each read with If-None-Match
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


def count_tasks(name, content):
    """Return the tasks in one file, or raise ``ValueError`` naming the problem."""
    if not content:
        raise ValueError("empty file")
    if ".." in name or name.endswith(BAD_SUFFIXES):
        raise ValueError("bad file name")
    suffix = name.rsplit(".", 1)[-1]
    if suffix == "json":
        return len(json.loads(content))
    if suffix in ("csv", "tsv"):
        return len(content.splitlines()) - 1
    if suffix in ("txt", "jsonl"):
        return len(content.splitlines())
    if suffix == "pdf":
        return content.count(b"/Type /Page ")
    raise ValueError("unknown format")


class _Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, *args):
        pass

    def _send(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_current(self, body):
        """Send ``body``, or a 304 when ETags are on and the reader's ``If-None-Match`` is its ETag."""
        sent = self.headers.get("If-None-Match")
        if not self.state.etags:
            if sent:
                self.state.revalidations.append((urlparse(self.path).path, 200))
            return self._send(200, body)
        etag = '"stale"' if self.state.stale_etags else f'"{hashlib.md5(json.dumps(body).encode()).hexdigest()}"'
        status = 304 if sent == etag else 200
        if sent:
            self.state.revalidations.append((urlparse(self.path).path, status))
        data = b"" if status == 304 else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("ETag", etag)
        if status == 200:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        url = urlparse(self.path)
        self.state.requests.append((self.command, url.path, self.headers.get("Authorization")))
        return [p for p in url.path.split("/") if p], parse_qs(url.query)

    def do_GET(self):
        parts, query = self._route()
        st = self.state
        if parts == ["api", "health", "import-flow"]:
            return self._send(404, {}) if st.upstream else self._send(200, {"status": "ok", "checks": {}})
        if len(parts) == 3 and parts[:2] == ["api", "projects"]:
            return self._send(200, st.projects[int(parts[2])])
        if len(parts) == 5 and parts[3] == "imports":
            if st.reset_polls:
                st.reset_polls -= 1
                return self._reset()
            if st.unavailable_polls:
                st.unavailable_polls -= 1
                return self._send(503, {"detail": "stub: Redis is down"}, {"Retry-After": st.retry_after or "0"})
            state = dict(st.imports[int(parts[4])])
            if st.async_never_completes or st.in_progress_polls:
                state["status"] = "in_progress"
                st.in_progress_polls = max(0, st.in_progress_polls - 1)
            return self._send_current(state)
        if len(parts) == 4 and parts[3] == "file-uploads":
            ids = json.loads(query["ids"][0]) if "ids" in query else None
            rows = [self._row(u) for u in st.uploads.values()
                    if u["project"] == int(parts[2]) and (ids is None or u["id"] in ids)]
            st.processing_reads = max(0, st.processing_reads - 1)
            return self._send_current(rows)
        self._send(404, {"detail": "no such path in the stub"})

    def _row(self, upload):
        row = {"id": upload["id"], "file": f"upload/{upload['file_name']}", "parent": None}
        if not self.state.upstream:
            count = upload["task_count"]
            if upload["id"] % self.state.fault_every == 0:
                count = 0 if self.state.zero_after_done else count + self.state.count_offset
            status = "processing" if self.state.processing_reads else "completed"
            if upload.get("late"):
                status = self.state.late_status
            row.update(file_name=upload["file_name"], task_count=count, status=status)
        return row

    def do_POST(self):
        parts, query = self._route()
        st = self.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if parts == ["api", "projects"]:
            pid = next(st.ids)
            st.projects[pid] = {"id": pid, "title": json.loads(raw)["title"], "task_number": 0}
            return self._send(201, st.projects[pid])
        if len(parts) == 4 and parts[3] == "import":
            return self._import(int(parts[2]), raw, query.get("async") == ["true"], "wait" in query)
        self._send(404, {"detail": "no such path in the stub"})

    def _reset(self):
        """Drop the connection with a TCP reset and no answer, as a killed gunicorn worker does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _import(self, pid, raw, is_async, waited=False):
        st = self.state
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            files = [(part.get_filename(), part.get_payload(decode=True)) for part in message.iter_parts()]
        else:
            files = [("body.json", raw)]
        sent_key = self.headers.get("Idempotency-Key")
        key = None if st.upstream else sent_key  # upstream Label Studio knows no such header
        attempt = sum(1 for earlier, _ in st.import_attempts if key is not None and earlier == key)
        st.import_attempts.append((sent_key, time.monotonic()))
        fault = st.import_faults[attempt] if attempt < len(st.import_faults) else None
        if fault == "reset":
            return self._reset()
        if fault is not None and fault != "reset_after_import":
            headers = {"Retry-After": st.retry_after} if fault in ("502", "503", "504") and st.retry_after else {}
            return self._send(int(fault), {"detail": f"stub fault {fault}"}, headers)
        fingerprint = hashlib.sha256(json.dumps([is_async, [[n, c.hex()] for n, c in files]]).encode()).hexdigest()
        if key in st.keyed:
            first_fingerprint, status, body = st.keyed[key]
            if first_fingerprint != fingerprint:
                return self._send(422, {"detail": f"Idempotency-Key {key!r} was used for another request"})
            return self._send(status, body)
        status, body = self._store_import(pid, files, is_async, waited)
        if key is not None:
            st.keyed[key] = (fingerprint, status, body)
        if fault == "reset_after_import":
            return self._reset()
        self._send(status, body)

    def _store_import(self, pid, files, is_async, waited=False):
        """Import ``files`` into project ``pid``; return the answer's ``(status, body)``."""
        st = self.state
        counts = []
        for name, content in files:
            try:
                counts.append(count_tasks(name, content))
            except ValueError as exc:
                if not st.accept_bad_files:
                    return 400, {"detail": f"{name}: {exc}. Upload a supported file."}
                counts.append(0)
        ids = []
        for (name, _), count in zip(files, counts):
            uid = next(st.ids)
            st.uploads[uid] = {"id": uid, "project": pid, "file_name": name, "task_count": count}
            ids.append(uid)
        if st.sync_delay and not is_async:
            for uid, count in zip(ids, counts):
                st.uploads[uid].update(task_count=0, late=True)
            time.sleep(st.sync_delay)  # sleep-ok: the stub server models a slow commit; it orders no actor
            for uid, count in zip(ids, counts):
                st.uploads[uid].update(task_count=count, late=False)
        st.projects[pid]["task_number"] += sum(counts)
        if not is_async:
            return 201, {"task_count": sum(counts), "annotation_count": 0, "prediction_count": 0,
                         "duration": 0.001, "file_upload_ids": ids, "could_be_tasks_list": False,
                         "found_formats": {}, "data_columns": []}
        iid = next(st.ids)
        st.imports[iid] = {"id": iid, "status": "completed", "task_count": sum(counts),
                           "file_upload_ids": ids, "error": None}
        body = {"import": iid}
        if not st.upstream:
            body.update(status="created", file_upload_ids=ids, poll_url=f"/api/projects/{pid}/imports/{iid}")
            if st.waits and waited:
                body.update(st.imports[iid])
        return 201, body


class StubServer:
    """Run the stub on a free loopback port in a thread; use as a context manager."""

    def __init__(self, state=None):
        self.state = state or StubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self.httpd = server_class(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
