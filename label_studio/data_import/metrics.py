"""Import-flow health: status distribution, stuck files and imports, count mismatches, job success, durations, workers.

One function computes them for the management command, the health endpoint and
the load suite alike; it only reads. :func:`health` judges them: each problem it
finds names its reason and what to do.
"""
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from label_studio.core.jobs import redis_configured, redis_connection
from label_studio.data_import.models import FileUpload, ProjectImport
from label_studio.tasks.models import Task


def import_flow_metrics(stuck_after=None, ids_within=None):
    """Return a dict of the import flow's health figures over the whole database.

    ``ids_within`` (a FileUpload queryset) limits the two id lists to those file uploads; the
    counts stay whole-database.
    """
    stuck_after = settings.IMPORT_STUCK_AFTER_SECONDS if stuck_after is None else stuck_after
    cutoff = timezone.now() - timedelta(seconds=stuck_after)
    distribution = {status: 0 for status, _ in FileUpload.STATUS_CHOICES}
    distribution.update(dict(FileUpload.objects.values_list("status").annotate(n=Count("id")).order_by()))
    stuck = FileUpload.objects.filter(status__in=FileUpload.ACTIVE).filter(
        Q(claimed_at__lt=cutoff) | Q(claimed_at=None, created_at__lt=cutoff))
    # By age, not by updated_at: a re-dispatch touches updated_at, and would hide an import stuck for good.
    # Served by the status index: the active imports are few.
    stuck_imports = ProjectImport.objects.filter(status__in=ProjectImport.ACTIVE, created_at__lt=cutoff)
    completed = FileUpload.objects.filter(status=FileUpload.COMPLETED).order_by()
    # Joins, not a task-counting subquery per file: that took 0.55 s at 13k files on PostgreSQL,
    # most of it compiling the plan (JIT), and grew with the table.
    empty_files = completed.filter(~Exists(Task.objects.filter(file_upload=OuterRef("pk"))), is_parent_document=False)
    documents = completed.filter(is_parent_document=True)  # a document's tasks are its pages'
    short_documents = documents.annotate(page_tasks=Count("pages__tasks")).filter(
        Q(page_tasks__lt=F("pages_total")) | Q(pages_done__lt=F("pages_total")))
    mismatch_ids = _first_ids(empty_files, short_documents)
    if ids_within is not None:
        stuck_listed = stuck.filter(pk__in=ids_within.values("pk"))
        mismatch_listed = _first_ids(*(files.filter(pk__in=ids_within.values("pk"))
                                       for files in (empty_files, short_documents)))
    else:
        stuck_listed, mismatch_listed = stuck, mismatch_ids
    completed_count = completed.count()
    finished = ProjectImport.objects.filter(status__in=ProjectImport.FINAL)
    durations = sorted(d for d in finished.order_by("-finished_at").values_list("duration", flat=True)[:100] if d is not None)
    return {
        "status_distribution": distribution,
        "stuck_files": stuck.count(),
        "stuck_file_ids": list(stuck_listed.values_list("id", flat=True)[:100]),
        "stuck_imports": stuck_imports.count(),
        "count_mismatches": len(mismatch_ids),
        "count_mismatch_ids": mismatch_listed,
        "task_count_accuracy": 1.0 if not completed_count else 1 - len(mismatch_ids) / completed_count,
        **rq_state(),
        "avg_import_duration_ms": round(1000 * sum(durations) / len(durations), 1) if durations else None,
        "p95_import_duration_ms": round(1000 * durations[int(0.95 * (len(durations) - 1))], 1) if durations else None,
    }


def _first_ids(*querysets):
    return sorted(pk for files in querysets for pk in files.values_list("id", flat=True)[:100])[:100]


def rq_state():
    """Return ``redis_error``, ``live_workers``, ``registered_workers`` and ``rq_job_success_rate``.

    Without Redis (jobs run inline) there is nothing to reach: no error, and None for the two
    worker counts. A Redis that does not answer within 2 s gives its error in ``redis_error`` and
    None for the rest; it never raises.
    """
    if not redis_configured():
        return {"redis_error": None, "live_workers": None, "registered_workers": None,
                "rq_job_success_rate": job_success_rate()}
    from redis.exceptions import RedisError

    connection = _health_connection(settings.RQ_QUEUES["default"]["URL"])
    try:
        workers = _registered_workers(connection)
        return {"redis_error": None, "live_workers": sum(map(_is_live, workers)), "registered_workers": len(workers),
                "rq_job_success_rate": job_success_rate(connection)}
    except (RedisError, OSError) as exc:
        return {"redis_error": f"{type(exc).__name__}: {exc}", "live_workers": None, "registered_workers": None,
                "rq_job_success_rate": None}


def _health_connection(url):
    # Short timeouts: a paused Redis must make the health endpoint answer 503, not hang with it.
    return redis_connection(url, connect_timeout=2, read_timeout=2)


def _registered_workers(connection):
    from rq import Worker

    return Worker.all(connection=connection)


def _is_live(worker):
    """Return True if ``worker`` works: its process exists, when on this host; else its heartbeat is fresh or it is busy.

    RQ drops a killed worker only when its key expires (``worker_ttl`` + 60 s, minutes), and a
    SimpleWorker heartbeats only between jobs; a worker on this host whose pid is gone is dead now.
    """
    if worker.hostname == socket.gethostname() and worker.pid:
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's: it exists
            pass
        return True
    age = (timezone.now() - worker.last_heartbeat).total_seconds() if worker.last_heartbeat else None
    return worker.get_state() == "busy" or (age is not None and age <= settings.IMPORT_WORKER_HEARTBEAT_TIMEOUT_SECONDS)


def job_success_rate(connection=None):
    """Return finished / (finished + failed) over RQ's registries, or over imports without Redis; None if none ran."""
    if redis_configured():
        from rq.registry import FailedJobRegistry, FinishedJobRegistry

        connection = connection or _health_connection(settings.RQ_QUEUES["default"]["URL"])
        finished = failed = 0
        for name in settings.RQ_QUEUES:
            finished += FinishedJobRegistry(name, connection=connection).count
            failed += FailedJobRegistry(name, connection=connection).count
    else:
        finished = ProjectImport.objects.filter(status=ProjectImport.COMPLETED).count()
        failed = ProjectImport.objects.filter(status=ProjectImport.FAILED).count()
    total = finished + failed
    return None if total == 0 else round(finished / total, 4)


def health(metrics):
    """Return the health endpoint's body for ``metrics``: ``healthy`` only when :func:`problems` finds none."""
    found = problems(metrics)
    return {
        "status": "unhealthy" if found else "healthy",
        "problems": found,
        "checks": {
            "task_count_accuracy": "pass" if metrics["count_mismatches"] == 0 else "fail",
            "stuck_files": metrics["stuck_files"],
            "stuck_imports": metrics["stuck_imports"],
            "redis": "unreachable" if metrics["redis_error"] else "ok",
            "live_workers": metrics["live_workers"],
            "rq_job_success_rate": metrics["rq_job_success_rate"],
            "avg_import_duration_ms": metrics["avg_import_duration_ms"],
        },
        "metrics": metrics,
    }


def problems(metrics):
    """Return a ``{"check", "reason", "fix"}`` dict per problem in ``metrics``, the most urgent first; [] when healthy."""
    found = []
    if metrics["redis_error"]:
        found.append({"check": "redis", "reason": f"Redis is unreachable ({metrics['redis_error']}): no import "
                      "can be queued or run.", "fix": "Start Redis again (racelab serve restarts its own) or fix "
                      "REDIS_URL; imports resume by themselves once it answers."})
    elif metrics["live_workers"] == 0:
        found.append({"check": "workers", "reason": f"No live rq worker ({metrics['registered_workers']} registered, "
                      "none with a live process or a fresh heartbeat): queued imports wait.",
                      "fix": "Start an rq worker on the high, default and low queues "
                      "(`python -m django rqworker high default low`)."})
    if metrics["stuck_imports"]:
        found.append({"check": "stuck_imports", "reason": f"{metrics['stuck_imports']} import(s) not final after "
                      f"{settings.IMPORT_STUCK_AFTER_SECONDS}s (IMPORT_STUCK_AFTER_SECONDS).",
                      "fix": "Check that workers run and `rq cron label_studio.data_import.cron` does; "
                      "`python -m django reconcile_imports` re-dispatches them now."})
    if metrics["stuck_files"]:
        found.append({"check": "stuck_files", "reason": f"{metrics['stuck_files']} file upload(s) pending or "
                      f"processing for over {settings.IMPORT_STUCK_AFTER_SECONDS}s (IMPORT_STUCK_AFTER_SECONDS).",
                      "fix": "`python -m django reconcile_imports` re-dispatches them; see stuck_file_ids."})
    if metrics["count_mismatches"]:
        found.append({"check": "task_count_accuracy", "reason": f"{metrics['count_mismatches']} completed file "
                      "upload(s) without all their tasks.", "fix": "See count_mismatch_ids and "
                      "`python -m django validate_import_flow`."})
    return found
