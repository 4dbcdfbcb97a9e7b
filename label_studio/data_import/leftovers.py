"""Delete what a killed web worker or job leaves behind: temp uploads and stored files without a row.

A request killed mid-upload leaves its Django temp file (``FILE_UPLOAD_TEMP_DIR``,
given to uploads alone); a request or job killed between storing a file and
committing its row leaves a stored file that no ``FileUpload`` names. Both are
deleted once older than ``IMPORT_LEFTOVER_MINUTES`` — far longer than any
request or transaction, so a file whose row is about to commit is never taken.
:func:`label_studio.data_import.services.reconcile` calls :func:`sweep_leftovers`.
"""
import os
import time

from django.conf import settings
from django.core.files.storage import default_storage

from label_studio.core.events import event
from label_studio.data_import.models import FileUpload

UPLOAD_DIR = "upload"  # as models.upload_path
BATCH = 500  # stored names looked up per query


def sweep_leftovers(older_than_minutes=None):
    """Delete leftovers older than ``older_than_minutes`` (default ``IMPORT_LEFTOVER_MINUTES``); return the counts."""
    minutes = settings.IMPORT_LEFTOVER_MINUTES if older_than_minutes is None else older_than_minutes
    cutoff = time.time() - minutes * 60
    done = {"temp_files": sweep_temp_uploads(cutoff), "orphan_files": sweep_orphan_files(cutoff)}
    if any(done.values()):
        event("import.leftovers_swept", **done)
    return done


def sweep_temp_uploads(cutoff):
    """Delete the files of ``FILE_UPLOAD_TEMP_DIR`` last modified before ``cutoff`` (a Unix time); return how many."""
    directory = settings.FILE_UPLOAD_TEMP_DIR
    if not directory or not os.path.isdir(directory):
        return 0
    deleted = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    deleted += 1
            except FileNotFoundError:  # its request ended and removed it meanwhile
                pass
    return deleted


def sweep_orphan_files(cutoff):
    """Delete stored upload files older than ``cutoff`` (a Unix time) that no file upload row names; return how many."""
    old = [name for name in _stored_names() if _modified(name) < cutoff]
    deleted = 0
    for start in range(0, len(old), BATCH):
        batch = old[start:start + BATCH]
        named = set(FileUpload.objects.filter(file__in=batch).values_list("file", flat=True))
        for name in batch:
            if name not in named:
                default_storage.delete(name)
                deleted += 1
    return deleted


def _modified(name):
    try:
        return default_storage.get_modified_time(name).timestamp()
    except FileNotFoundError:  # deleted meanwhile (a failed upload's on-commit delete): not a leftover
        return float("inf")


def _stored_names():
    if not default_storage.exists(UPLOAD_DIR):
        return []
    names = []
    for project_dir in default_storage.listdir(UPLOAD_DIR)[0]:
        directory = f"{UPLOAD_DIR}/{project_dir}"
        names += [f"{directory}/{name}" for name in default_storage.listdir(directory)[1]]
    return names
