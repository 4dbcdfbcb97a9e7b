"""Django settings for the racelab import service.

Everything a deployment changes comes from the environment:

- ``DATABASE_URL`` — ``postgres://…`` or ``sqlite:///path`` (default: a SQLite file
  under ``RACELAB_HOME``). ``racelab serve`` and the test plugin start a throw-away
  PostgreSQL and set this for you when asked.
- ``REDIS_URL`` — RQ's Redis. Empty means no Redis: jobs run inline right after
  the transaction that dispatched them commits.
- ``RACELAB_FIXES`` — which race fixes stay on: ``all`` (default), ``none`` or a
  list like ``R1,R3``; see :mod:`label_studio.core.fixes`.
- ``IMPORT_ASYNC_DEFAULT`` — ``true`` to import in the background when a request
  does not say ``?async=``.
- ``DJANGO_SECRET_KEY`` — signs login links (and Django's own tokens); ``racelab serve`` sets a random one.
  The default is public: anyone can forge a login link with it.
- ``RACELAB_FAILED_AUTH_RATE`` — failed token or password attempts allowed per client
  address, e.g. ``10/min`` (default); see :mod:`label_studio.core.throttling`.
- ``RACELAB_NUM_PROXIES`` — reverse proxies in front of the app (default 0), so that the
  throttle counts per client, not per proxy, and a client cannot pick its address by header.
- ``RACELAB_LOGIN_LINK_MAX_AGE`` — seconds a login link stays valid (default 3600).
- ``RACE_CONTROLLER`` — dotted path of a factory that installs a race-point
  controller at start-up (only test tools set this).
"""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from label_studio.core.fixes import fixes_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
RACELAB_HOME = Path(os.environ.get("RACELAB_HOME", Path.cwd() / ".racelab"))
RACELAB_HOME.mkdir(parents=True, exist_ok=True)  # SQLite files and media live here; a fresh checkout has none


def _env_bool(name, default):
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "racelab-development-only-not-secret")
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_rq",
    "label_studio.core",
    "label_studio.projects",
    "label_studio.tasks",
    "label_studio.data_import",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # No page may be framed: a framed login-link page would let another site click "Log in" for you.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "label_studio.core.urls"
WSGI_APPLICATION = "label_studio.core.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{RACELAB_HOME / 'racelab.sqlite3'}",
        # Reuse connections across requests and jobs: a new PostgreSQL connection forks a backend.
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", 60)),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (web threads, worker processes) need WAL, a busy timeout,
    # and BEGIN IMMEDIATE so that a read never upgrades to a write and deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(RACELAB_HOME / "test-racelab.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
RQ_QUEUES = {
    name: {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 600}
    for name in ("high", "default", "low")
}
RQ = {"COMMIT_MODE": "auto"}  # the dispatcher (core.jobs) decides when to enqueue

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Failed-authentication counts: shared by every web process when there is a Redis.
    "throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                 "KEY_PREFIX": "racelab-throttle"} if REDIS_URL else
                {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "label_studio.core.throttling.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "label_studio.core.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {"failed_authentication": os.environ.get("RACELAB_FAILED_AUTH_RATE", "10/min")},
    # Proxies in front of the app that append to X-Forwarded-For. DRF's default (None) trusts the whole
    # header, so a client could name a new address per attempt and never be throttled.
    "NUM_PROXIES": int(os.environ.get("RACELAB_NUM_PROXIES", 0)),
}

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", RACELAB_HOME / "media"))
MEDIA_URL = "/data/"
STATIC_URL = "/static/"
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"
LOGIN_LINK_MAX_AGE = int(os.environ.get("RACELAB_LOGIN_LINK_MAX_AGE", 3600))

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# The import flow.
IMPORT_FIXES = fixes_from_env(os.environ.get("RACELAB_FIXES", "all"))
IMPORT_ASYNC_DEFAULT = _env_bool("IMPORT_ASYNC_DEFAULT", False)
# One file, and one JSON body, may hold at most this many bytes.
IMPORT_MAX_FILE_BYTES = int(os.environ.get("IMPORT_MAX_FILE_BYTES", 50 * 1024 * 1024))
# A whole multipart import request (all its files) may hold at most this many bytes: the view keeps
# every file in memory until its rows are written, so this bounds a web worker's memory per request.
IMPORT_MAX_REQUEST_BYTES = int(os.environ.get("IMPORT_MAX_REQUEST_BYTES", 2 * IMPORT_MAX_FILE_BYTES))
IMPORT_MAX_TASKS = int(os.environ.get("IMPORT_MAX_TASKS", 100_000))
IMPORT_MAX_JSON_DEPTH = int(os.environ.get("IMPORT_MAX_JSON_DEPTH", 64))
IMPORT_MAX_PDF_PAGES = int(os.environ.get("IMPORT_MAX_PDF_PAGES", 1000))
# A PDF's pages are split over at most this many parallel page jobs (about the number of workers).
IMPORT_PDF_PAGE_JOBS = int(os.environ.get("IMPORT_PDF_PAGE_JOBS", 4))
# Async imports up to this many bytes go to the "high" queue, bigger ones to "default".
IMPORT_SMALL_BYTES = int(os.environ.get("IMPORT_SMALL_BYTES", 8 * 1024))
# An async import the client waits for (?wait=N) of at most this many bytes runs in its request, not in a worker
# (services.start_async_import); 0 sends every async import through Redis to a worker.
IMPORT_RUN_IN_REQUEST_BYTES = int(os.environ.get("IMPORT_RUN_IN_REQUEST_BYTES", 1024 * 1024))
# A file unfinished this long is "stuck" to the health check; a claim this old is stale (its worker died).
IMPORT_STUCK_AFTER_SECONDS = int(os.environ.get("IMPORT_STUCK_AFTER_SECONDS", 600))
# A running job refreshes its RQ worker's heartbeat this often (label_studio.core.jobs: SimpleWorker sends none).
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_SECONDS", 2))
# A claim's RQ worker is dead once its heartbeat is this old (fix R12): killed or stopped, its claim is released.
IMPORT_WORKER_DEAD_AFTER_SECONDS = float(os.environ.get("IMPORT_WORKER_DEAD_AFTER_SECONDS", 10))
if IMPORT_WORKER_DEAD_AFTER_SECONDS < 3 * WORKER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"IMPORT_WORKER_DEAD_AFTER_SECONDS ({IMPORT_WORKER_DEAD_AFTER_SECONDS}) must be at least three "
        f"WORKER_HEARTBEAT_SECONDS ({WORKER_HEARTBEAT_SECONDS}): a live worker one missed heartbeat late would "
        "look dead and lose its claim. Raise the first or lower the second.")
# An import still "created" this long, whose job Redis does not hold, had its job lost: the reconciler re-dispatches it.
IMPORT_LOST_AFTER_SECONDS = int(os.environ.get("IMPORT_LOST_AFTER_SECONDS", 10))
# How often `rq cron` runs the reconciler (label_studio/data_import/cron.py): with the lost-job age, a job lost
# in a Redis crash is re-sent within 15 s, a dead worker's file within IMPORT_WORKER_DEAD_AFTER_SECONDS + 5 s.
# Each run is a few index-served queries.
IMPORT_RECONCILE_INTERVAL_SECONDS = int(os.environ.get("IMPORT_RECONCILE_INTERVAL_SECONDS", 5))
if IMPORT_LOST_AFTER_SECONDS + IMPORT_RECONCILE_INTERVAL_SECONDS >= IMPORT_STUCK_AFTER_SECONDS:
    raise ImproperlyConfigured(
        f"IMPORT_LOST_AFTER_SECONDS ({IMPORT_LOST_AFTER_SECONDS}) + IMPORT_RECONCILE_INTERVAL_SECONDS "
        f"({IMPORT_RECONCILE_INTERVAL_SECONDS}) must stay under IMPORT_STUCK_AFTER_SECONDS "
        f"({IMPORT_STUCK_AFTER_SECONDS}): the reconciler has to re-dispatch a lost job before the health check "
        "reports its file stuck. Lower the first two or raise the last.")
# For the health check, an rq worker on another host is dead once its last heartbeat is older than this (see
# metrics._is_live). Longer than IMPORT_WORKER_DEAD_AFTER_SECONDS: an idle worker beats only every worker_ttl - 15 s,
# a busy one every WORKER_HEARTBEAT_SECONDS.
IMPORT_WORKER_HEARTBEAT_TIMEOUT_SECONDS = int(os.environ.get("IMPORT_WORKER_HEARTBEAT_TIMEOUT_SECONDS", 60))
# Requests bigger than this land in a temp file instead of memory; the import limit above still applies.
DATA_UPLOAD_MAX_MEMORY_SIZE = IMPORT_MAX_FILE_BYTES * 2
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Their own directory, so that the reconciler can delete what a killed web worker left there.
FILE_UPLOAD_TEMP_DIR = str(Path(os.environ.get("FILE_UPLOAD_TEMP_DIR", RACELAB_HOME / "upload-tmp")))
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
# The reconciler deletes temp uploads, and stored files that no file upload row names, older than this.
IMPORT_LEFTOVER_MINUTES = int(os.environ.get("IMPORT_LEFTOVER_MINUTES", 60))
# An import retried with the same Idempotency-Key within this many hours gets the first one's result.
IMPORT_IDEMPOTENCY_KEY_HOURS = int(os.environ.get("IMPORT_IDEMPOTENCY_KEY_HOURS", 24))
# What a 503 tells a client to wait when Redis cannot take an async import.
IMPORT_RETRY_AFTER_SECONDS = int(os.environ.get("IMPORT_RETRY_AFTER_SECONDS", 30))
# The longest a poll of an import's status may wait for it to be final (?wait=N; data_import.finality).
IMPORT_POLL_WAIT_MAX_SECONDS = float(os.environ.get("IMPORT_POLL_WAIT_MAX_SECONDS", 5))

RACE_CONTROLLER = os.environ.get("RACE_CONTROLLER", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"event": {"()": "label_studio.core.events.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "event"}},
    "loggers": {
        "racelab.events": {"handlers": ["console"], "level": os.environ.get("RACELAB_LOG_LEVEL", "INFO"), "propagate": False},
    },
}
