"""Self-tests of racelab.harness.remote: a child Python process obeys the test's orderings through Redis."""
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from racelab.harness import services
from racelab.harness.remote import RemoteSyncPoints, from_env
from racelab.harness.syncpoints import SyncPoints, SyncPointTimeout
from racelab import race_point

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    from racelab.harness.remote import install_from_env
    from racelab import race_point
    install_from_env()
    race_point("child.started")
    race_point("child.b", n=1)
    race_point("child.die")
    raise SystemExit("the exit at child.die did not fire")
""")


@pytest.fixture(scope="module")
def redis_url():
    try:
        service = services.start_redis()
    except services.ServiceUnavailable as exc:
        pytest.skip(f"no Redis server for the cross-process tests: {exc}")
    with service:
        yield service.url


@pytest.fixture
def remote(redis_url):
    controller = RemoteSyncPoints(redis_url, f"selftest-{uuid.uuid4().hex[:8]}", timeout=20)
    with controller:
        yield controller
    controller.cleanup()


def spawn(remote, **env):
    return subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env={**os.environ, **remote.env, **env})


def test_an_ordering_holds_across_processes(remote):
    # Both directions: the child waits for the test, and the test waits for the child.
    remote.order(("child.started", "parent.a", "child.b"))
    remote.delay("child.b", 0.01)
    remote.exit("child.die", 7)
    child = spawn(remote, RACELAB_ACTOR="child")
    race_point("parent.a")
    assert child.wait(30) == 7
    remote.assert_order("child.started", "parent.a", "child.b", "child.die")
    trace = remote.trace
    assert [h.actor.partition(":")[0] for h in trace] == ["child", str(os.getpid()), "child", "child"]
    assert trace[2].context == {"n": 1} and trace[2].actions == ("delay 10ms",)
    assert trace[3].actions == ("exit 7",)
    race_point("child.die")  # the exit was set here, so it never fires in this process


def test_a_remote_wait_times_out_naming_the_missing_point(remote):
    remote.timeout = 0.3
    remote.order(("never", "parent.x"))
    with pytest.raises(SyncPointTimeout, match=r"(?s)waited .* at 'parent.x' for 'never'.*Never reached: 'never'"):
        race_point("parent.x")


def test_a_function_callback_stays_in_this_process_and_a_predicate_cannot_order(remote):
    seen = []
    remote.on("x", seen.append)
    race_point("x", n=1)
    assert seen == [{"n": 1}]
    assert remote.local_rules.actions[0].arg == seen.append and not remote._doc()["rules"].get("actions")
    with pytest.raises(TypeError, match="context filter"):
        remote.order((("a", lambda ctx: True), "b"))


def test_from_env_builds_the_controller_a_process_asks_for(redis_url):
    assert from_env({}) is None
    local = from_env({"RACELAB_INJECT": "worker=5ms"})
    assert isinstance(local, SyncPoints) and local.rules.actions[0].label == "RACELAB_INJECT worker=5ms"
    remote = from_env({"RACELAB_CONTROL_URL": redis_url, "RACELAB_CONTROL_NAMESPACE": "x",
                       "RACELAB_INJECT": "enqueue=fail"})
    assert isinstance(remote, RemoteSyncPoints) and not remote.owner and remote.local_rules
    with pytest.raises(RuntimeError, match="RACELAB_CONTROL_NAMESPACE"):
        from_env({"RACELAB_CONTROL_URL": redis_url})
