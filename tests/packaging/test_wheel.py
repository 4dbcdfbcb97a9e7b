"""Install racelab's wheel as a new user would, beside an app's own ``label_studio`` and ``reports``.

Slow but real: builds the wheel from a clean copy of this checkout, creates a fresh virtualenv,
and installs into it from PyPI (network needed, a few minutes at most). It proves the wheel
carries ``racelab/`` only, overwrites and removes nothing of other distributions, satisfies
``pip check``, and that its pytest plugins stay silent in a run that does not use them.
"""
import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[2]
FAKES = {
    "fake-label-studio": ["label_studio/__init__.py", "label_studio/manage.py", "label_studio/core/__init__.py",
                          "label_studio/core/urls.py", "label_studio/data_import/__init__.py",
                          "label_studio/data_import/api.py", "label_studio/data_import/models.py",
                          "label_studio/tasks/__init__.py", "label_studio/tasks/models.py"],
    "fake-shop-reports": ["reports/__init__.py", "reports/apps.py", "reports/models.py"],
}
PYPROJECT = """[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"
[project]\nname = "{name}"\nversion = "1.0"\n[tool.setuptools.packages.find]\ninclude = ["{top}*"]\n"""


def run(cmd, timeout=120, check=True, **kwargs):
    """Run ``cmd`` and return the result; on a non-zero exit, fail with the tail of its output."""
    result = subprocess.run([str(part) for part in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert result.returncode == 0, explain(result)
    return result


def explain(result):
    """Return a failure message naming the command, its exit code and the tails of its output."""
    return (f"{' '.join(result.args)} exited {result.returncode}\n--- stdout (tail) ---\n{result.stdout[-3000:]}"
            f"\n--- stderr (tail) ---\n{result.stderr[-3000:]}")


def clean_env(path):
    """Return this environment without what would leak the checkout, Django settings or Redis into a run."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTEST_", "RACELAB_", "DJANGO_")) and key not in {"PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL"}}
    return {**env, "PATH": path}


def snapshot(site, dist):
    """Return the sha256 of every file that the RECORD of ``dist`` lists (None for a missing one)."""
    records = list(site.glob(f"{dist.replace('-', '_')}-*.dist-info/RECORD"))
    paths = [row[0] for row in csv.reader(records[0].read_text().splitlines()) if row] if records else []
    return {path: hashlib.sha256((site / path).read_bytes()).hexdigest() if (site / path).is_file() else None
            for path in paths}


def changed(venv):
    """Return each recorded file of the fake apps that is now missing or different, as "dist: path"."""
    now = {name: snapshot(venv["site"], name) for name in FAKES}
    return sorted(f"{name}: {path}" for name, files in venv["before"].items() for path, digest in files.items()
                  if digest is None or now[name].get(path) != digest)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build racelab's wheel from a copy of the checkout's tracked and unignored files."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    if run([sys.executable, "-c", "import build"], check=False).returncode == 0:
        run([sys.executable, "-m", "build", "--wheel", "--outdir", out, src], timeout=600)
    else:
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", src, "-w", out], timeout=600)
    return next(out.glob("racelab-*.whl"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel):
    """Create a virtualenv holding both fake apps, record their files, then install racelab's wheel."""
    base = tmp_path_factory.mktemp("venv")
    env, python = base / "env", base / "env" / "bin" / "python"
    run([sys.executable, "-m", "venv", env])
    sources = []
    for name, files in FAKES.items():
        sources.append(base / name)
        (base / name).mkdir()
        (base / name / "pyproject.toml").write_text(PYPROJECT.format(name=name, top=files[0].split("/")[0]))
        for file in files:
            (base / name / file).parent.mkdir(parents=True, exist_ok=True)
            (base / name / file).write_text(f'OWNER = "{name}"\nFILE = "{file}"\n')
    path = f"{env / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    run([python, "-m", "pip", "install", *sources], timeout=600, cwd=base, env=clean_env(path))
    site = next(env.glob("lib/python*/site-packages"))
    before = {name: snapshot(site, name) for name in FAKES}
    assert all(set(files) <= set(before[name]) for name, files in FAKES.items()), before
    run([python, "-m", "pip", "install", wheel], timeout=600, cwd=base, env=clean_env(path))
    return {"python": python, "site": site, "before": before, "wheel": wheel, "cwd": base, "path": path}


def test_wheel_holds_racelab_only(venv):
    """Install nothing but racelab/, its dist-info and its console script."""
    version = venv["wheel"].name.split("-")[1]
    record = next(venv["site"].glob(f"racelab-{version}.dist-info")) / "RECORD"
    paths = {row[0] for row in csv.reader(record.read_text().splitlines()) if row}
    allowed = ("racelab/", f"racelab-{version}.dist-info/")
    stray = sorted(p for p in paths if not p.startswith(allowed) and p != "../../../bin/racelab")
    assert stray == [], f"racelab's wheel installs outside racelab/: {stray}"
    mapped = {"racelab": "racelab", "harness": "racelab/harness", "reports": "racelab/reports",
              "locustfiles": "racelab/locustfiles"}
    sources = run(["git", "ls-files", "--", *(f"{top}/*.py" for top in mapped)], cwd=ROOT).stdout.split()
    missing = sorted({f"{mapped[name.split('/', 1)[0]]}/{name.split('/', 1)[1]}" for name in sources} - paths)
    assert missing == [], f"modules of the checkout that the wheel leaves out (pyproject's packages list?): {missing}"


def test_other_apps_untouched_and_importable(venv):
    """Leave both fake apps' files as they were, pass pip check, and import them beside racelab."""
    assert changed(venv) == []
    env = clean_env(venv["path"])
    run([venv["python"], "-m", "pip", "check"], cwd=venv["cwd"], env=env)
    code = ("import label_studio, reports; from racelab import race_point; import racelab.harness.plugin, "
            "racelab.harness.django_plugin; print(label_studio.OWNER, label_studio.__file__); "
            "print(reports.OWNER, reports.__file__)")
    out = run([venv["python"], "-c", code], cwd=venv["cwd"], env=env).stdout.splitlines()
    assert out == [f"fake-label-studio {venv['site'] / 'label_studio' / '__init__.py'}",
                   f"fake-shop-reports {venv['site'] / 'reports' / '__init__.py'}"]
    run([venv["python"].parent / "racelab", "--help"], cwd=venv["cwd"], env=env)
    serve = run([venv["python"].parent / "racelab", "serve"], cwd=venv["cwd"], env=env, check=False)
    assert serve.returncode == 2 and "source checkout" in serve.stderr and "Traceback" not in serve.stderr, explain(serve)


def test_plugins_silent_in_a_plain_run(venv, tmp_path):
    """Pass a plain pytest run without Django settings or Redis, printing nothing of racelab."""
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    assert 1\n")
    env = clean_env(str(venv["python"].parent))  # no redis-server on PATH: starting one would fail the run
    result = run([venv["python"], "-m", "pytest", "-p", "no:cacheprovider", "test_plain.py"], cwd=tmp_path, env=env)
    lines = result.stdout.splitlines()
    assert any(line.startswith("plugins:") and "racelab" in line for line in lines), explain(result)
    assert [line for line in lines if line.startswith("racelab:")] == [], explain(result)
    assert "1 passed" in result.stdout, explain(result)
    options = run([venv["python"], "-m", "pytest", "--help"], cwd=tmp_path, env=env).stdout
    assert "--race-seed" in options and "--race-db" in options


def test_uninstall_leaves_other_apps(venv):
    """Uninstall racelab and leave every file of both fake apps in place and unchanged."""
    env = clean_env(venv["path"])
    try:
        run([venv["python"], "-m", "pip", "uninstall", "-y", "racelab"], cwd=venv["cwd"], env=env)
        assert not (venv["site"] / "racelab").exists()
        assert changed(venv) == []
    finally:  # the other tests need racelab installed, whatever order they run in
        run([venv["python"], "-m", "pip", "install", "--no-deps", "--no-index", venv["wheel"]], env=env)
