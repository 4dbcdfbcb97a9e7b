"""Check that this deployment's import flow is wired safely; exit 1 naming what is wrong.

Checks: every fix flag is on; the dispatcher defers a job dispatched inside a
transaction to its commit (checked inside a transaction that is rolled back, so
nothing is sent); the status columns exist; the database
isolation is READ COMMITTED (PostgreSQL) or WAL with IMMEDIATE transactions
(SQLite); Redis answers when configured.
"""
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from label_studio.core import jobs
from label_studio.core.fixes import FIXES, fix_enabled
from label_studio.data_import.models import FileUpload


def _noop():
    """A job that does nothing, for the dispatcher check."""


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        problems = [f"fix {fix} is off: {FIXES[fix]}" for fix in FIXES if not fix_enabled(fix)]
        with transaction.atomic():
            pending = len(connection.run_on_commit)
            jobs.start_job_async_or_sync(_noop)
            deferred = len(connection.run_on_commit) == pending + 1
            transaction.set_rollback(True)  # a deferred job is dropped with the rollback: nothing is sent
        if not deferred:
            problems.append("the dispatcher sent a job before its transaction committed (fix R2 off?)")
        columns = {field.name for field in FileUpload._meta.get_fields()}
        problems += [f"FileUpload has no {name!r} column; run migrate" for name in ("status", "tasks_created_at", "error_message")
                     if name not in columns]
        problems += self.database_problems()
        if jobs.redis_configured():
            import django_rq

            try:
                django_rq.get_connection("high").ping()
            except Exception as exc:
                problems.append(f"Redis at REDIS_URL does not answer ({exc}); start it or unset REDIS_URL")
        for problem in problems:
            self.stderr.write(f"✗ {problem}")
        if problems:
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS("Import flow validation passed."))

    def database_problems(self):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SHOW TRANSACTION ISOLATION LEVEL")
                level = cursor.fetchone()[0]
                return [] if level == "read committed" else [f"isolation level is {level!r}, expected 'read committed'"]
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA journal_mode")
                mode = cursor.fetchone()[0]
                return [] if mode == "wal" else [f"SQLite journal_mode is {mode!r}, expected 'wal' (see settings)"]
        return []
