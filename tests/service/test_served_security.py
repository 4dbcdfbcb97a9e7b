"""Security of what ``racelab serve`` starts: passwords on its PostgreSQL and Redis, no secret on a command line.

Runs the real command (gunicorn, ``rq worker`` processes, ``rq cron``, and the servers it
starts) on the run's database kind (``--race-db``); a few seconds to start.
"""
import os
import re
import signal
import stat
import subprocess
import sys
from urllib.parse import urlparse

import psutil
import pytest
import redis
import requests

from racelab.serving import free_port

SERVE_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def served(request):
    """Run ``racelab serve`` until its banner is printed; give ``(banner lines, process)`` and stop it after."""
    db = request.config.getoption("race_db")
    db = db if db in ("sqlite", "postgres") else "postgres"
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "racelab.cli", "serve", "--port", str(port), "--db", db,
                                "--workers", "1", "--web-workers", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, cwd=request.config.rootpath,
                               env={**os.environ, "RACELAB_USER_TOKEN": ""})
    banner = []
    try:
        # readline() blocks; the test run's timeout (pytest-timeout) bounds it if serve never prints.
        while not banner or not banner[-1].startswith("Enter prints a new login link"):
            line = process.stdout.readline()
            assert line, f"racelab serve exited with {process.wait()} before its banner: {banner}"
            banner.append(line.rstrip("\n"))
        yield banner, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(SERVE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()


def field(banner, label):
    return next(line.split(label, 1)[1].split()[0] for line in banner if label in line)


def served_environment(process):
    """Return the environment of the served gunicorn (what every process of the stack gets)."""
    gunicorn = next(p for p in psutil.Process(process.pid).children(recursive=True) if "gunicorn" in " ".join(p.cmdline()))
    return gunicorn.environ()


def test_serve_prints_the_token_file_and_a_login_link_not_the_token(served):
    banner, _ = served
    token_file = field(banner, "API token in: ")
    token = open(token_file).read().strip()

    assert token and token not in "\n".join(banner), banner
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert "password" not in "\n".join(banner).lower(), banner  # no default password to print any more
    url = re.search(r"http://127\.0\.0\.1:\d+/", banner[0]).group(0)
    assert requests.get(f"{url}api/projects", headers={"Authorization": f"Token {token}"}, timeout=10).status_code == 200


def test_the_printed_login_link_logs_a_browser_in_once(served):
    banner, process = served
    link = field(banner, "log in: ")
    browser = requests.Session()

    page = browser.get(link, timeout=10)
    assert page.status_code == 200 and "Log in as racelab" in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    logged_in = browser.post(link, data={"csrfmiddlewaretoken": csrf, "next": "/"}, headers={"Referer": link},
                             timeout=10)
    assert logged_in.status_code == 200 and "Log out" in logged_in.text, logged_in.text[:500]
    assert requests.get(link, timeout=10).status_code == 403  # used up

    process.stdin.write("\n")  # Enter: a new link
    process.stdin.flush()
    fresh = process.stdout.readline()
    assert "log in: " in fresh and fresh.split("log in: ")[1].split()[0] != link


def test_no_process_of_the_stack_has_a_secret_on_its_command_line(served):
    _, process = served
    env = served_environment(process)
    token = open(field(served[0], "API token in: ")).read().strip()
    secrets = {"API token": token, "secret key": env["DJANGO_SECRET_KEY"],
               "Redis password": urlparse(env["REDIS_URL"]).password}
    if env["DATABASE_URL"].startswith("postgres"):
        secrets["PostgreSQL password"] = urlparse(env["DATABASE_URL"]).password
    assert all(secrets.values()), secrets
    stack = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    servers = [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("redis-server", "postgres")]
    for proc in {*stack, *servers}:
        try:
            argv = " ".join(proc.cmdline())
        except psutil.Error:  # ended meanwhile (another run's server)
            continue
        leaked = [name for name, value in secrets.items() if value in argv]
        assert not leaked, f"{leaked} on the command line of pid {proc.pid}: {argv}"
    commands = [" ".join(p.cmdline()) for p in stack]
    assert any("rq.cli cron" in argv for argv in commands), commands  # it got its Redis from the environment
    assert any("rqworker" in argv for argv in commands) and any("gunicorn" in argv for argv in commands), commands


def test_the_served_redis_and_postgresql_refuse_a_client_without_the_password(served):
    _, process = served
    env = served_environment(process)
    redis_url = urlparse(env["REDIS_URL"])
    assert redis_url.hostname == "127.0.0.1" and redis_url.password
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        redis.Redis(host="127.0.0.1", port=redis_url.port).set("job", "anything")  # no enqueueing without it
    assert redis.Redis.from_url(env["REDIS_URL"]).ping()
    if not env["DATABASE_URL"].startswith("postgres"):
        pytest.skip("the served database is SQLite (run with --race-db postgres for PostgreSQL)")
    import psycopg

    database = urlparse(env["DATABASE_URL"])
    assert database.hostname == "127.0.0.1"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=database.port, user="postgres", dbname=database.path.lstrip("/"))
    with psycopg.connect(env["DATABASE_URL"]) as connection:
        assert connection.execute("SELECT count(*) FROM authtoken_token").fetchone()[0] == 1


def test_failed_tokens_are_counted_in_redis_for_every_web_process(served):
    """Last in this module: it leaves 127.0.0.1 throttled for the rest of the minute."""
    banner, process = served
    env = served_environment(process)
    url = re.search(r"http://127\.0\.0\.1:\d+/", banner[0]).group(0)
    allowed = int(env.get("RACELAB_FAILED_AUTH_RATE", "10/min").split("/")[0])

    statuses = [requests.get(f"{url}api/projects", headers={"Authorization": f"Token guess{i}"}, timeout=10).status_code
                for i in range(allowed + 1)]

    assert statuses == [401] * allowed + [429], statuses
    keys = redis.Redis.from_url(env["REDIS_URL"]).keys("*throttle_failed_authentication_127.0.0.1")
    assert keys, "the failures were not counted in the shared Redis cache (each gunicorn worker would count its own)"
