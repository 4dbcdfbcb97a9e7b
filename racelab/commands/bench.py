"""Benchmark imports on two builds side by side, in one run: CPU of the whole served stack, client and server time.

The builds are this checkout with every fix on and with every fix off, or,
with ``--base COMMIT``, this checkout against a git worktree of that commit.
Each is served the way it serves itself (its gunicorn, rq workers, rq cron,
PostgreSQL and Redis), and both stay up for the whole run so that the phases
interleave — a phase runs on one build, then on the other, in alternating
order each round — and machine load drifts over both alike. A phase's CPU is
the user and system time of the build's whole process tree, read from
``/proc`` before and after it, also told apart by process (web, workers,
cron, PostgreSQL, Redis); the client, this process, is not in it. Its time is
the client's, import to display, and the server's: the import's own
``duration``, from its row's creation to its final status. The
client polls as the load suite's users do, sending ``If-None-Match`` where
the build offers ETags. Writes ``reports/latest/bench.json``.
"""
import contextlib
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from racelab import checkout, proctree
from racelab.builds import ServedBuild
from racelab.locustfiles._payloads import upload
from racelab.serving import DB_CHOICES

DEADLINE = 60.0  # seconds an import may take to show before it counts as never shown
# As the load users poll (racelab.locustfiles._common, which this process must not import: it patches in gevent).
POLL_FAST, POLL_FAST_FOR, POLL_SLOW = 0.1, 2.0, 0.5
FINAL = ("completed", "failed")  # an import's statuses once it has ended
IMPORT_WAIT = 5  # the ?wait= of an async import: a build that takes it answers once the import is final
# What each child of a served build runs, told by a word of its command line; checked in this order.
KINDS = (("gunicorn", "web"), ("rqworker", "workers"), ("cron", "cron"), ("postgres", "postgres"),
         ("redis-server", "redis"))


def add_arguments(parser):
    parser.add_argument("--base", metavar="COMMIT",
                        help="Compare this checkout with a worktree of COMMIT, both with every fix on "
                             "(default: this checkout with every fix on against every fix off).")
    parser.add_argument("--db", default="postgres", help=f"{' or '.join(DB_CHOICES)} or a URL (default postgres).")
    parser.add_argument("--workers", type=int, default=3, help="rq worker processes per served build (default 3).")
    parser.add_argument("--uploads", type=int, default=50, help="Concurrent small async imports a round (default 50).")
    parser.add_argument("--repeat", type=int, default=3,
                        help="1000-task async imports a round, one at a time (default 3).")
    parser.add_argument("--pages", type=int, default=50,
                        help="Pages of the PDF imported once a round (default 50; 0: no PDF).")
    parser.add_argument("--polls", type=int, default=100,
                        help="Reads of a finished import's status and file list a round (default 100 each).")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds over both builds (default 2).")
    parser.add_argument("--warmup", type=int, default=1,
                        help="Rounds run first and not counted (default 1): a process's first requests and jobs "
                             "import and connect what it then keeps, a cost paid once, not per import.")
    parser.add_argument("--out", default="reports/latest/bench.json", help="Where to write the figures.")


class Client:
    """An HTTP client of one build's import API that polls as cheaply as the build lets it; counts its requests."""

    def __init__(self, build):
        self.url, self.session = build.url, requests.Session()
        self.session.headers["Authorization"] = f"Token {build.token}"
        self.validators, self.requests, self.not_modified = {}, 0, 0

    def project(self):
        return self.session.post(f"{self.url}/api/projects", json={"title": "bench"}, timeout=30).json()["id"]

    def import_file(self, project, item):
        self.requests += 1
        files = {"file": (item.name, item.content, item.content_type)}
        response = self.session.post(f"{self.url}/api/projects/{project}/import", files=files, timeout=120,
                                     params={"async": "true", "wait": IMPORT_WAIT})
        response.raise_for_status()
        return response.json()

    def get(self, path, params=None):
        """Return the JSON at ``path``, revalidated with its last ETag: a 304 returns the last JSON again."""
        key = (path, json.dumps(params, sort_keys=True))
        etag, last = self.validators.get(key, (None, None))
        self.requests += 1
        response = self.session.get(f"{self.url}{path}", params=params, timeout=30,
                                    headers={"If-None-Match": etag} if etag else {})
        if response.status_code == 304 and etag:
            self.not_modified += 1
            return last
        response.raise_for_status()
        body = response.json()
        if response.headers.get("ETag"):
            self.validators[key] = (response.headers["ETag"], body)
        return body


def poll_delay(waited):
    return POLL_FAST if waited < POLL_FAST_FOR else POLL_SLOW


def import_and_watch(client, project, item):
    """Import ``item`` async and follow it the cheapest way the build offers; return ``(wall, server)`` seconds.

    The import's status is polled until final (not at all when the 201 says so:
    a build that takes ``?wait=`` answers once the import is final). Then the
    file must show ``completed`` with all its tasks (a PDF: counted over its
    pages): in the final status's ``files`` where the build gives them (a
    racelab build counts them as its file-upload list does), else in that list,
    polled as the load users poll. ``wall`` is the client's time until the file
    shows; ``server`` the import's own ``duration``, from its row's creation to
    its final status, as the server recorded it. Either is None for never.
    """
    started = time.monotonic()
    try:
        body = client.import_file(project, item)
    except requests.RequestException:
        return None, None
    final = dict(body) if body.get("status") in FINAL else {}
    wait = body.get("poll_wait") or 0  # offered: the status poll answers when the import is final

    def status_is_final():
        status = client.get(f"/api/projects/{project}/imports/{body['import']}",
                            {"wait": f"{wait:g}"} if wait else None)
        final.update(status if status["status"] in FINAL else {})
        return bool(final)

    def file_shows():
        ids = body.get("file_upload_ids") or final["file_upload_ids"]  # with fix R7 off the 201 names the import only
        return shown(final.get("files") or [], ids, item.expected_tasks) or shown(
            client.get(f"/api/projects/{project}/file-uploads", {"ids": json.dumps(ids)}), ids, item.expected_tasks)

    reads = (status_is_final, file_shows)
    for done in reads[1:] if final else reads:
        while True:
            asked = time.monotonic()
            if answered(done):
                break
            waited = time.monotonic() - started
            if waited + poll_delay(waited) > DEADLINE:
                return None, final.get("duration")
            time.sleep(max(0.0, poll_delay(waited) - (time.monotonic() - asked)))  # as the load users poll
    return time.monotonic() - started, final.get("duration")


def answered(read):
    """Return ``read()``, False when the request failed (an error answer is an unfinished poll, not a crash)."""
    try:
        return read()
    except (requests.RequestException, ValueError, KeyError):
        return False


def shown(rows, ids, expected):
    row = next((r for r in rows if r["id"] == ids[0]), None)
    return bool(row) and row["status"] == "completed" and row["task_count"] == expected


def kind_of(pid, build):
    """Return what process ``pid`` of ``build`` is: web, workers, cron, postgres, redis, or the serving supervisor."""
    if pid == build.pid:
        return "supervisor"
    arguments = " ".join(proctree.command_line(pid))
    return next((kind for word, kind in KINDS if word in arguments), "other")


class Tally:
    """What one phase cost on one build, summed over the rounds: CPU by process, imports, requests, client times."""

    def __init__(self):
        self.cpu, self.imports, self.requests, self.not_modified, self.walls, self.servers = 0.0, 0, 0, 0, [], []
        self.cpu_by_kind = {}

    def add_cpu(self, build, before, after):
        """Add the CPU spent between readings ``before`` and ``after`` of :func:`proctree.cpu_seconds_by_child`."""
        for pid, seconds in after.items():
            kind = kind_of(pid, build)
            self.cpu_by_kind[kind] = self.cpu_by_kind.get(kind, 0.0) + seconds - before.get(pid, 0.0)
            self.cpu += seconds - before.get(pid, 0.0)

    def by_kind(self):
        """Return ``{process kind: CPU ms per import}``."""
        return {kind: round(1000 * seconds / max(1, self.imports), 1)
                for kind, seconds in sorted(self.cpu_by_kind.items())}

    def figures(self, phase):
        """Return the figures of ``phase``: CPU per import; client times, requests and 304s per import; imports shown."""
        done = sorted(wall for wall in self.walls if wall is not None)
        figures = {f"{phase}_cpu_ms": round(1000 * self.cpu / max(1, self.imports), 1)}
        if self.walls:
            figures[f"{phase}_wall_p50_ms"] = round(1000 * statistics.median(done), 1) if done else None
        if len(self.walls) >= 10 and done:
            figures[f"{phase}_wall_p95_ms"] = round(1000 * done[min(len(done) - 1, int(0.95 * len(done)))], 1)
        if servers := [seconds for seconds in self.servers if seconds is not None]:
            figures[f"{phase}_server_p50_ms"] = round(1000 * statistics.median(servers), 1)
        figures[f"{phase}_requests"] = round(self.requests / max(1, self.imports), 1)
        figures[f"{phase}_304s"] = round(self.not_modified / max(1, self.imports), 2)
        if self.walls:
            figures[f"{phase}_shown"] = f"{len(done)}/{len(self.walls)}"
        return figures


def measure(build, tally, items, concurrent):
    """Import ``items`` into ``build`` (all at once when ``concurrent``, else one by one) and add the cost to ``tally``.

    Projects are made before the CPU is read: only the imports and their polls are counted.
    """
    clients = [Client(build) for _ in items] if concurrent else [Client(build)] * len(items)
    projects = [client.project() for client in clients] if concurrent else [clients[0].project()] * len(items)
    before = proctree.cpu_seconds_by_child(build.pid)
    if concurrent:
        with ThreadPoolExecutor(max_workers=len(items)) as pool:
            times = list(pool.map(import_and_watch, clients, projects, items))
    else:
        times = [import_and_watch(clients[0], projects[0], item) for item in items]
    tally.add_cpu(build, before, proctree.cpu_seconds_by_child(build.pid))
    tally.imports += len(items)
    tally.walls += [wall for wall, _ in times]
    tally.servers += [server for _, server in times]
    for client in set(clients):
        tally.requests, tally.not_modified = tally.requests + client.requests, tally.not_modified + client.not_modified


def measure_polls(build, tally, count):
    """Read a finished import's status and its file list ``count`` times each, as a poller would; add the cost.

    Each read is revalidated with the ETag of the first, where the build gives
    one: the figure is the cost of one poll that finds nothing new. The import
    and its first reads are made before the CPU is read.
    """
    client = Client(build)
    project = client.project()
    body = client.import_file(project, upload("csv", 5))
    status_read = (f"/api/projects/{project}/imports/{body['import']}", None)
    deadline = time.monotonic() + DEADLINE
    while (status := client.get(*status_read))["status"] not in FINAL:
        if time.monotonic() > deadline:
            raise RuntimeError(f"import {body['import']} on {build.label} was not final within {DEADLINE:.0f}s; "
                               "is its rq worker running? `racelab serve` shows its output.")
        time.sleep(POLL_FAST)
    # From the status, not the 201: with fix R7 off the 201 names the import only.
    reads = [status_read, (f"/api/projects/{project}/file-uploads", {"ids": json.dumps(status["file_upload_ids"])})]
    client.get(*reads[1])
    client.requests = client.not_modified = 0
    before = proctree.cpu_seconds_by_child(build.pid)
    for _ in range(count):
        for path, params in reads:
            client.get(path, params)
    tally.add_cpu(build, before, proctree.cpu_seconds_by_child(build.pid))
    tally.imports += client.requests
    tally.requests, tally.not_modified = tally.requests + client.requests, tally.not_modified + client.not_modified


def phases(args):
    """Return ``(name, measure(build, tally))`` of each phase of a round."""
    def imports(items, concurrent):
        return lambda build, tally: measure(build, tally, items(), concurrent)

    pdf = [(f"pdf{args.pages}", imports(lambda: [upload("pdf", args.pages)], False))] if args.pages else []
    return [
        ("small", imports(lambda: [upload("csv", 5) for _ in range(args.uploads)], True)),
        ("batch1000", imports(lambda: [upload("csv", 1000) for _ in range(args.repeat)], False)),
        *pdf,
        ("poll", lambda build, tally: measure_polls(build, tally, args.polls)),
    ]


@contextlib.contextmanager
def served_builds(args):
    """Yield the two builds, served side by side; stop both (and remove a base worktree) on exit."""
    with contextlib.ExitStack() as stack:
        root = checkout.require("racelab bench")
        if args.base:
            base_root = stack.enter_context(checkout.worktree(args.base))
            plan = [("this", root, "all"), (f"base {args.base}", base_root, "all")]
        else:
            plan = [("fixed", root, "all"), ("fixes off", root, "none")]
        builds = []
        for label, build_root, fixes in plan:
            print(f"racelab bench: serving {label} ({build_root}, fixes={fixes}) ...", flush=True)
            builds.append(stack.enter_context(ServedBuild(label, build_root, fixes, db=args.db, workers=args.workers)))
        yield builds


def run(args):
    with served_builds(args) as builds:
        tallies = {(build.label, name): Tally() for build in builds for name, _ in phases(args)}
        for round_number in range(args.warmup + args.rounds):
            counted = round_number >= args.warmup
            shown = (f"round {round_number - args.warmup + 1}/{args.rounds}" if counted
                     else f"warm-up {round_number + 1}/{args.warmup}, not counted")
            for name, phase in phases(args):
                for build in builds if round_number % 2 == 0 else builds[::-1]:
                    print(f"racelab bench: {shown}, {name} on {build.label}", flush=True)
                    phase(build, tallies[build.label, name] if counted else Tally())
        described = {build.label: {"root": str(build.root), "commit": build.commit, "fixes": build.fixes}
                     for build in builds}
    first, second = described
    figures, by_process = {label: {} for label in described}, {label: {} for label in described}
    for (label, name), tally in tallies.items():
        figures[label].update(tally.figures(name))
        by_process[label][name] = tally.by_kind()
    report(figures, first, second)
    report_by_process(by_process, first, second)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"builds": described, "figures": figures, "ratios": ratios(figures, first, second),
                               "cpu_ms_by_process": by_process,
                               "options": {key: value for key, value in vars(args).items() if key != "handler"}},
                              indent=1) + "\n")
    print(f"\n{first} is {described[first]['commit']}, {second} {described[second]['commit']}. cpu_ms: CPU of the "
          f"whole served stack per import (poll: per read of a finished import's status or file list); wall: the "
          f"client's import to display; server: the import's own duration, its row's creation to its final status; "
          f"requests and 304s: per import.\n"
          f"Ratios < 1: {first} costs less. Other load on this machine moves the absolute figures, both builds "
          f"alike.\nFigures: {out}")
    return 0


def ratios(figures, first, second):
    """Return ``{figure: first / second}`` of the figures both builds have as non-zero numbers."""
    return {key: round(value / figures[second][key], 2) for key, value in figures[first].items()
            if isinstance(value, float) and isinstance(figures[second].get(key), float) and figures[second][key]}


def report(figures, first, second):
    shares = ratios(figures, first, second)
    width = max(12, len(first), len(second)) + 2
    print(f"\n{'figure':<24}{first:>{width}}{second:>{width}}{'ratio':>8}")
    for key, value in figures[first].items():
        print(f"{key:<24}{value!s:>{width}}{figures[second].get(key)!s:>{width}}{shares.get(key, '-')!s:>8}")


def report_by_process(by_process, first, second):
    """Print the CPU ms per import of each kind of process, a column per phase, as ``first/second``."""
    names = list(by_process[first])
    kinds = sorted({kind for label in by_process for phase in by_process[label].values() for kind in phase})
    print(f"\n{'cpu_ms by process':<24}" + "".join(f"{name:>20}" for name in names) + f"   ({first}/{second})")
    for kind in kinds:
        cells = [f"{by_process[first][name].get(kind, 0)}/{by_process[second][name].get(kind, 0)}" for name in names]
        print(f"{kind:<24}" + "".join(f"{cell:>20}" for cell in cells))
