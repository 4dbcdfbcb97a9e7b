"""Check after a load run that every import ended and left exactly what was sent: ``completeness.json``.

:func:`check_completeness` waits (bounded by the stuck timeout + 60 s) until no
import or file upload of the app is still active, then reads its database
directly — PostgreSQL or SQLite, by the URL the load run served it with or was
given (``--db-url``) — and counts what breaks the rules that
:mod:`racelab.reports.completeness` lists. What the users sent comes from the
``sent`` lists of ``*_racelab.json`` (:mod:`racelab.locustfiles._observations`).

Plain SQL over the reference app's tables (``data_import_fileupload``,
``data_import_projectimport``, ``tasks_task``), not its models: this process runs
no Django. A database without those tables gets a file that says why, and the
four gates are skipped.
"""
import json
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from racelab.reports.completeness import COMPLETENESS_JSON

_ACTIVE = ("SELECT (SELECT count(*) FROM data_import_projectimport WHERE status IN ('created', 'in_progress')) + "
           "(SELECT count(*) FROM data_import_fileupload WHERE status IN ('pending', 'processing'))")
ACTIVE_ROWS = ("SELECT 'import', id, status FROM data_import_projectimport WHERE status IN ('created', 'in_progress') "
                "UNION ALL SELECT 'file upload', id, status FROM data_import_fileupload "
                "WHERE status IN ('pending', 'processing')")
_FILES = "SELECT id, parent_id, status, project_id FROM data_import_fileupload"
_TASKS_PER_FILE = "SELECT file_upload_id, count(*) FROM tasks_task GROUP BY file_upload_id"
_PROJECT_TOTALS = (
    "SELECT t.project_id, count(*), sum(CASE WHEN t.file_upload_id IS NULL OR f.status = 'completed' THEN 1 ELSE 0 END) "
    "FROM tasks_task t LEFT JOIN data_import_fileupload f ON f.id = t.file_upload_id GROUP BY t.project_id")
_DUPLICATES = ("SELECT project_id, CAST(data AS TEXT), count(*) FROM tasks_task "
               "GROUP BY project_id, CAST(data AS TEXT) HAVING count(*) > 1")
_COUNTS = ("SELECT (SELECT count(*) FROM data_import_projectimport), (SELECT count(*) FROM data_import_fileupload), "
           "(SELECT count(*) FROM tasks_task)")
EXAMPLES = 20  # rows named in the file, at most


def check_completeness(database_url, results, wait_limit_s, poll_s=0.5):
    """Wait for every import to be final, check the database at ``database_url``, write ``results/completeness.json``.

    Return the document written. The wait ends as soon as nothing is active, or
    after ``wait_limit_s`` seconds; what is still active then is counted, never
    waited for longer. Raises nothing for a database that cannot be read: the
    file's ``not_measured`` says why.
    """
    results = Path(results)
    began = time.monotonic()
    try:
        with connect(database_url) as query:
            while query(_ACTIVE)[0][0] and time.monotonic() - began < wait_limit_s:
                time.sleep(poll_s)  # polling the database: it has no notification to wait on
            document = _judge(query, _sent(results))
    except Exception as exc:  # any driver's error: the check is skipped, the run is not lost
        document = {"not_measured": f"cannot read the app's tables in {_redacted(database_url)}: "
                                    f"{' '.join(str(exc).split())[:300]}"}
    document.update(waited_s=round(time.monotonic() - began, 1), wait_limit_s=wait_limit_s,
                    source=_redacted(database_url))
    (results / COMPLETENESS_JSON).write_text(json.dumps(document, indent=1))
    return document


def _judge(query, sent):
    examples = []
    active = query(ACTIVE_ROWS)
    examples += [f"{kind} {pk} still {status} when the wait ended" for kind, pk, status in active[:EXAMPLES]]

    files = {pk: (parent, status, project) for pk, parent, status, project in query(_FILES)}
    per_file = {pk: count for pk, count in query(_TASKS_PER_FILE)}
    wrong = 0
    for entry in sent:
        ids = set(entry["file_upload_ids"])
        members = ids | {pk for pk, (parent, _, _) in files.items() if parent in ids}  # a PDF's pages
        if any(files.get(pk, (None, "missing"))[1] != "completed" for pk in ids):
            continue  # failed or unfinished: the other rules judge it
        shown = sum(per_file.get(pk, 0) for pk in members)
        if shown != entry["tasks"]:
            wrong += 1
            if len(examples) < EXAMPLES:
                examples.append(f"project {entry['project']}: files {sorted(ids)} show {shown} tasks, "
                                f"the client sent {entry['tasks']}")

    mismatched = 0
    for project, total, of_completed in query(_PROJECT_TOTALS):
        if total != of_completed:
            mismatched += 1
            if len(examples) < EXAMPLES:
                examples.append(f"project {project} holds {total} tasks, its completed files and JSON imports "
                                f"{of_completed}: {total - of_completed} belong to a file not completed")

    duplicates = 0
    for project, data, count in query(_DUPLICATES):
        duplicates += count - 1
        if len(examples) < EXAMPLES:
            examples.append(f"project {project}: {count} tasks with the data {data[:120]}")
    imports, uploads, tasks = query(_COUNTS)[0]
    return {"imports_not_final": len(active), "wrong_task_counts": wrong, "project_total_mismatches": mismatched,
            "duplicate_tasks": duplicates, "examples": examples,
            "checked": {"imports": imports, "files": uploads, "tasks": tasks, "sent": len(sent)}}


def _sent(results):
    sent = []
    for path in sorted(results.glob("*_racelab.json")):
        try:
            sent += json.loads(path.read_text()).get("sent", [])
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
    return sent


class connect:
    """Open ``url`` read-only enough for counting and give a ``query(sql) -> rows`` function."""

    def __init__(self, url):
        self.url = url

    def __enter__(self):
        if self.url.startswith("sqlite"):
            path = unquote(self.url.split(":///", 1)[1])  # sqlite:////abs/path or sqlite:///relative/path
            self.connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30)
        else:
            from racelab.harness.services import postgres_driver

            self.connection = postgres_driver().connect(self.url, application_name="racelab completeness",
                                                        connect_timeout=10)
            self.connection.autocommit = True  # each query sees the latest commits

        def query(sql):
            cursor = self.connection.cursor()
            try:
                cursor.execute(sql)
                return cursor.fetchall()
            finally:
                cursor.close()

        return query

    def __exit__(self, *exc_info):
        self.connection.close()
        return False


def _redacted(url):
    parsed = urlparse(url or "")
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
