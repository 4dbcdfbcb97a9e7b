"""Settings of the shop, as ``django-admin startproject`` and django-rq's README would write them."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "shop-tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django_rq", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "shop.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("SHOP_REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {"orders": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60}, "mail": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60}}
# The shop enqueues as it did on django-rq 3: at once, not when the transaction commits.
RQ = {"COMMIT_MODE": "auto", "AUTOCOMMIT": True}
