"""``rq cron`` configuration: the periodic reconciler (fix R8/R10's safety net).

Run it beside the workers: ``rq cron label_studio.data_import.cron --url $REDIS_URL``.
It only enqueues ``reconcile_all`` on the ``low`` queue every
``IMPORT_RECONCILE_INTERVAL_SECONDS``; a worker runs it.
"""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings")
django.setup()

from django.conf import settings  # noqa: E402  (after django.setup())
from rq import cron  # noqa: E402

from label_studio.data_import.services import reconcile_all  # noqa: E402

cron.register(reconcile_all, "low", interval=settings.IMPORT_RECONCILE_INTERVAL_SECONDS)
