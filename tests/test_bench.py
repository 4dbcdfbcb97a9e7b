"""``racelab bench``: the /proc accounting of a process tree's CPU, and a short run over two served builds."""
import json
import os
import subprocess
import sys
import time

import pytest

from racelab import checkout, proctree

# A parent that, told "go", runs a child burning 0.4 s to its end (reaped: its CPU moves to the parent's
# cutime), starts a child that burns 0.3 s and stays alive, burns 0.2 s itself, says "done", and then
# waits for stdin to close.
BURN = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {seconds}: pass\n"
PARENT = f"""
import subprocess, sys
print("ready", flush=True)
sys.stdin.readline()
subprocess.run([sys.executable, "-c", {BURN.format(seconds=0.4)!r}], check=True)
alive = subprocess.Popen([sys.executable, "-c", {BURN.format(seconds=0.3) + "print('burnt', flush=True)"
                                                 + chr(10) + "import sys; sys.stdin.read()"!r}],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
alive.stdout.readline()
{BURN.format(seconds=0.2)}
print("done", flush=True)
sys.stdin.read()
alive.stdin.close()
alive.wait(30)
"""


def read_line(process, timeout=60):
    """Return the next line ``process`` prints, failing the test if none comes within ``timeout`` seconds."""
    import select

    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"the process printed nothing within {timeout}s"
    return process.stdout.readline().strip()


def test_cpu_seconds_counts_a_tree_its_reaped_children_and_nothing_else():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(parent) == "ready"
        before = proctree.cpu_seconds([parent.pid])
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert read_line(parent) == "done"
        start = time.process_time()
        while time.process_time() - start < 0.3:  # the measuring process's own CPU: not in the tree
            pass
        spent = proctree.cpu_seconds([parent.pid]) - before
        assert len(proctree.tree_pids([parent.pid])) == 2  # the reaped child is gone, its CPU is not
    finally:
        parent.stdin.close()
        parent.wait(30)
    # 0.9 s burnt, plus two interpreters' start-up; not the 0.3 s burnt here.
    assert 0.9 <= spent < 1.15, f"the tree spent {spent:.3f} s of CPU; 0.9 s burnt, plus two interpreter start-ups"


def test_a_tree_that_is_gone_costs_nothing():
    assert proctree.cpu_seconds([2 ** 22 + 1]) == 0.0  # above pid_max's default: no such process


def run_bench(tmp_path, *options):
    """Run a short ``racelab bench`` on SQLite with ``options``; return ``(its output, its figures)``."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": checkout.python_path(checkout.ROOT, tmp_path / "shim")}
    done = subprocess.run(
        [sys.executable, "-m", "racelab.cli", "bench", "--db", "sqlite", "--workers", "1", "--uploads", "2",
         "--repeat", "1", "--polls", "3", "--rounds", "1", *options, "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done, json.loads(out.read_text())


@pytest.mark.skipif(not (checkout.ROOT / ".git").exists(), reason="--base needs a git checkout")
def test_bench_serves_two_builds_side_by_side_and_writes_the_cost_per_import(tmp_path):
    done, bench = run_bench(tmp_path, "--pages", "2", "--base", "HEAD")
    assert list(bench["builds"]) == ["this", "base HEAD"]
    for figures in bench["figures"].values():  # the default warm-up round ran too, and is not counted
        for phase in ("small", "batch1000", "pdf2"):
            assert figures[f"{phase}_cpu_ms"] > 0 and figures[f"{phase}_wall_p50_ms"] > 0
            assert 0 < figures[f"{phase}_server_p50_ms"] <= figures[f"{phase}_wall_p50_ms"]
            assert figures[f"{phase}_shown"] == ("2/2" if phase == "small" else "1/1")
        assert figures["poll_cpu_ms"] > 0 and figures["poll_requests"] == 1.0
    assert bench["figures"]["this"]["poll_304s"] == 1.0  # HEAD has ETags: every read of an unchanged import is a 304
    for processes in bench["cpu_ms_by_process"].values():
        # A waited small or 1000-task import runs in its request; a PDF's pages run on the workers.
        assert processes["small"]["web"] > 0 and processes["pdf2"]["workers"] > 0
    assert "small_cpu_ms" in bench["ratios"] and "small_cpu_ms" in done.stdout
    worktrees = subprocess.run(["git", "-C", str(checkout.ROOT), "worktree", "list"], capture_output=True, text=True)
    assert "racelab-base-" not in worktrees.stdout  # the base's worktree is removed


def test_bench_without_a_base_compares_every_fix_on_with_every_fix_off(tmp_path):
    """The default comparison: with fix R7 off the 201 names the import only, and every import must still show.

    No PDF (``--pages 0``): with every fix off its pages' count is cached at 0 (R6) and it never shows."""
    _, bench = run_bench(tmp_path, "--pages", "0", "--warmup", "0")
    assert list(bench["builds"]) == ["fixed", "fixes off"]
    for figures in bench["figures"].values():
        assert (figures["small_shown"], figures["batch1000_shown"]) == ("2/2", "1/1"), figures
        assert not any(name.startswith("pdf") for name in figures), figures
