"""Installed next to an app, racelab changes no pytest run until a test asks for it; each refusal names its fix."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SHOP = Path(__file__).resolve().parents[1]

UNTOUCHED = """
    import glob, os
    import pytest
    from django.conf import settings
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from rq.queue import Queue
    from racelab.harness import race

    def children():
        me, found = str(os.getpid()), []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                if open(stat).read().rsplit(")", 1)[1].split()[1] == me:
                    found.append(stat)
            except (OSError, IndexError):
                pass
        return found

    @pytest.mark.django_db
    def test_no_racelab_here():
        from shop.models import Product
        Product.objects.create(name="x")
        assert race.installed() is None and connection.execute_wrappers == []
        for method in (BaseDatabaseWrapper.commit, BaseDatabaseWrapper.rollback, Queue.enqueue_job):
            assert "racelab" not in method.__code__.co_filename, method
        assert settings.DATABASES["default"]["NAME"] != str(settings.BASE_DIR / "shop.sqlite3")  # pytest-django's own
        assert settings.RQ_QUEUES["orders"]["URL"] == "redis://127.0.0.1:6379/0" and not children()
"""

WORKER_ON_MEMORY_DB = """
    def test_worker(rq_worker_thread):
        pass
"""

REDIS_FROM_ENV = """
    def test_redis(race_redis_url):
        print("URL", race_redis_url)
"""


def run_pytest(tmp_path, source, *args, **env):
    """Run pytest on one test file as the shop's own suite would, in a clean environment; return the result."""
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nDJANGO_SETTINGS_MODULE = shop.settings\npythonpath = {SHOP}\n")
    (tmp_path / "test_it.py").write_text(textwrap.dedent(source))
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PYTEST_", "RACELAB_", "DJANGO_")) and k not in ("REDIS_URL", "SHOP_REDIS_URL")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-q", "test_it.py", *args],
                          cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_a_run_that_does_not_ask_for_racelab_is_untouched(tmp_path):
    done = run_pytest(tmp_path, UNTOUCHED)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "racelab" not in done.stdout.lower()


def test_a_worker_refuses_an_in_memory_test_database_and_names_the_fix(tmp_path):
    done = run_pytest(tmp_path, WORKER_ON_MEMORY_DB)
    assert done.returncode != 0
    assert "is SQLite in memory" in done.stdout and "--race-db sqlite" in done.stdout, done.stdout[-3000:]


def test_a_configured_redis_is_used_instead_of_starting_one(tmp_path):
    done = run_pytest(tmp_path, REDIS_FROM_ENV, REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode == 0 and "URL redis://127.0.0.1:1/1" in done.stdout, done.stdout[-3000:]
    done = run_pytest(tmp_path, REDIS_FROM_ENV, "--race-redis", "redis://127.0.0.1:2", REDIS_URL="redis://127.0.0.1:1/0")
    assert "URL redis://127.0.0.1:2/1" in done.stdout, done.stdout[-3000:]
