"""Drive load users against the stub target in a fresh interpreter and print what they recorded.

Run as ``python drive_user.py '<spec JSON>'``; tests call :func:`drive`. A child
process, because importing Locust monkey-patches the whole interpreter with
gevent: inside pytest that would turn the harness's threads into greenlets for
every later test. The spec::

    {"user": "uploads.UploadsUser", "users": 1, "state": {<StubState switches>},
     "env": {"RACELAB_ASYNC_RATIO": "1", ...}, "project_task_number": 100,
     "steps": [["file", "csv", 7], ["body", 3], ["bad", "empty_file"], ["task", "fifty_page_pdf", 0],
               ["stub", "async_never_completes", false]]}

The output is one JSON object: anomalies, displays, HTTP failures, the
return value of each step, the observations and a look at the stub's data.
"""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def drive(spec, timeout=60):
    """Run ``spec`` in a child interpreter; return its JSON report plus its ``stderr``, or raise."""
    env = {**os.environ, "RACELAB_TOKEN": "testtoken", "RACELAB_IMPORT_DEADLINE": "0.3",
           "RACELAB_ASYNC_RATIO": "0", **spec.get("env", {})}
    for name in spec.get("unset", []):
        env.pop(name, None)
    done = subprocess.run([sys.executable, str(HERE / "drive_user.py"), json.dumps(spec)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"drive_user.py exited {done.returncode}:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["stderr"] = done.stderr
    return report


def _main(spec):
    from locust.env import Environment
    from stub_target import StubServer, StubState

    from racelab.locustfiles import _payloads
    from racelab.locustfiles._observations import ANOMALY, METRIC, observations

    module_name, class_name = spec.get("user", "uploads.UploadsUser").split(".")
    user_class = getattr(importlib.import_module(f"locustfiles.{module_name}"), class_name)
    fired, results = [], []
    with StubServer(StubState(**spec.get("state", {}))) as server:
        env = Environment(user_classes=[user_class], host=server.url)
        user_class.host = server.url  # what a Locust runner does with --host
        env.events.request.add_listener(lambda **event: fired.append(event))
        try:
            users = [user_class(env) for _ in range(spec.get("users", 1))]
            for user in users:
                user.on_start()
        except RuntimeError as exc:
            return {"start_error": str(exc)}
        if "project_task_number" in spec:
            server.state.projects[users[0].ledger.project_id]["task_number"] = spec["project_task_number"]
        for step in spec.get("steps", []):
            kind, args = step[0], step[1:]
            if kind == "stub":  # ["stub", switch, value]: flip a fault between steps
                setattr(server.state, args[0], args[1])
                continue
            if kind == "task":
                results.append(getattr(users[args[1] if len(args) > 1 else 0], args[0])())
                continue
            batch = {"file": _payloads.file_batch, "body": _payloads.json_body_batch,
                     "bad": _payloads.bad_batch}[kind](*args)
            results.append(users[0].run_import(batch))
        obs = observations(env)
        return {
            "results": results,
            "anomalies": [[e["name"], str(e["exception"])] for e in fired if e["request_type"] == ANOMALY],
            "displays": [e["name"] for e in fired if e["request_type"] == METRIC],
            "http_failures": [f"{e['name']}: {e['exception']}" for e in fired
                              if e["request_type"] not in (ANOMALY, METRIC) and e["exception"]],
            "counters": dict(obs.counters),
            "statuses": dict(obs.statuses),
            "notices": obs.notices,
            "auth_headers": sorted({auth for _, _, auth in server.state.requests}),
            "reads": [path for method, path, _ in server.state.requests if method == "GET"],
            "revalidations": server.state.revalidations,
            "import_attempts": server.state.import_attempts,
            "import_requests": [[e["name"], e["exception"] is None] for e in fired
                                if e["request_type"] == "POST" and "/import" in e["name"]],
            "project_totals": [p["task_number"] for p in server.state.projects.values()],
            "shared_ledger": len({id(u.ledger) for u in users}) == 1,
        }


if __name__ == "__main__":
    sys.path[:0] = [str(HERE), str(ROOT)]
    print(json.dumps(_main(json.loads(sys.argv[1]))))
