"""No leftovers: the reconciler deletes old temp uploads and stored files without a row; a failed write keeps none."""
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from label_studio.data_import import services
from label_studio.data_import.models import FileUpload
from tests.conftest import json_tasks, named

pytestmark = pytest.mark.django_db(transaction=True)

HOUR_AGO = time.time() - 3600


def aged(path, when=HOUR_AGO):
    os.utime(path, (when, when))
    return path


def test_the_reconciler_deletes_old_temp_uploads_and_keeps_young_ones(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    os.mkdir(settings.FILE_UPLOAD_TEMP_DIR)
    settings.IMPORT_LEFTOVER_MINUTES = 30
    old = tmp_path / "upload-tmp" / "tmpold.upload"
    old.write_bytes(b"x" * 100)
    aged(old)
    young = tmp_path / "upload-tmp" / "tmpyoung.upload"
    young.write_bytes(b"y")

    assert services.reconcile()["temp_files"] == 1

    assert (old.exists(), young.exists()) == (False, True)


def test_a_big_upload_spools_into_the_dedicated_temp_dir(api, project, settings, sync_points):
    temp_dir = settings.FILE_UPLOAD_TEMP_DIR  # as the settings module gives it, where the sweep looks
    before = set(os.listdir(temp_dir))
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    seen = []
    sync_points.on("import.file_uploads_created", lambda context: seen.extend(set(os.listdir(temp_dir)) - before))

    response = api.post(f"/api/projects/{project.id}/import", {"file": [named("big.json", json_tasks(200))]},
                        format="multipart")

    assert response.status_code == 201, response.content
    assert len(seen) == 1 and ".upload" in seen[0], seen  # Django's temp file of this request


def test_the_reconciler_deletes_old_stored_files_without_a_row_and_keeps_the_rest(api, project, settings):
    settings.IMPORT_LEFTOVER_MINUTES = 30
    kept = api.post(f"/api/projects/{project.id}/import", {"file": [named("a.json", json_tasks(2))]},
                    format="multipart").json()["file_upload_ids"][0]
    rowed = FileUpload.objects.get(id=kept).file.name
    orphan = default_storage.save(f"upload/{project.id}/orphan.json", ContentFile(b"[]"))
    young_orphan = default_storage.save(f"upload/{project.id}/young.json", ContentFile(b"[]"))
    for name in (rowed, orphan):
        aged(default_storage.path(name))

    assert services.reconcile()["orphan_files"] == 1

    assert [default_storage.exists(name) for name in (rowed, orphan, young_orphan)] == [True, False, True]


@pytest.mark.parametrize("mode", ["false", "true"])
def test_an_error_between_storing_a_file_and_inserting_its_row_leaves_nothing(mode, api, project, settings,
                                                                               sync_points):
    sync_points.fail("import.file_stored", RuntimeError("the web worker dies here"))

    response = api.post(f"/api/projects/{project.id}/import?async={mode}", {"file": [named("a.json", json_tasks(2))]},
                        format="multipart")

    assert response.status_code == 500
    assert FileUpload.objects.count() == 0
    upload_dir = settings.MEDIA_ROOT / "upload"
    assert not upload_dir.exists() or not any(path.is_file() for path in upload_dir.rglob("*"))
