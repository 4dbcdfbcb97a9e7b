"""``rq cron`` configuration: the periodic reconciler, the one recovery of lost jobs (fix R8) and dead workers (R10).

Run it beside the workers: ``rq cron label_studio.data_import.cron --url $REDIS_URL``.
It only enqueues ``reconcile_all`` on the ``low`` queue every
``IMPORT_RECONCILE_INTERVAL_SECONDS``; a worker runs it. An import schedules no
job of its own for recovery, so an import whose job was lost waits at most
``IMPORT_LOST_AFTER_SECONDS`` + ``IMPORT_RECONCILE_INTERVAL_SECONDS``, which the
settings keep under ``IMPORT_STUCK_AFTER_SECONDS``: it is re-dispatched before
``GET /api/health/import-flow`` counts its files stuck.
"""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings")
django.setup()

from django.conf import settings  # noqa: E402  (after django.setup())
from rq import cron  # noqa: E402

from label_studio.data_import.services import reconcile_all  # noqa: E402

cron.register(reconcile_all, "low", interval=settings.IMPORT_RECONCILE_INTERVAL_SECONDS)
