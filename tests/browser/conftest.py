"""Fixtures of the browser tests: served apps, headless Chromium, logged-in pages, screenshots.

The tests drive a separately served app (gunicorn + real ``rq worker`` processes,
see :func:`racelab.serving.served_app`) with Debian's Chromium through Playwright;
they need neither pytest-django's test database nor a Playwright browser download.
"""
import os
import shutil
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' installs Playwright")

CHROMIUM = os.environ.get("RACELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "latest" / "screenshots"
TIMEOUT_MS = 20_000
PASSWORD = "the browser tests' own password"  # racelab serve sets none; slow_app's user gets this one


@pytest.fixture(scope="module")
def app():
    """Serve the app on SQLite with one web and two worker processes; a few seconds to start, once per module."""
    from racelab.serving import served_app

    with served_app(db="sqlite", workers=2, web_workers=1, inject="") as served:
        yield served


@pytest.fixture(scope="module")
def slow_app():
    """Serve the app like :func:`app`, but every job waits 1.5 s before it starts, so "Pending" stays on screen.

    Its user ``racelab`` has the password :data:`PASSWORD` (from ``RACELAB_PASSWORD``), to log in by the form.
    """
    from racelab.serving import served_app

    with served_app(db="sqlite", workers=1, web_workers=1, inject="worker=1500ms",
                    extra_env={"RACELAB_PASSWORD": PASSWORD}) as served:
        yield served


@pytest.fixture(scope="session")
def browser():
    """Launch Debian's headless Chromium once per run; skip the browser tests when it is not installed."""
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        pytest.skip(f"No Chromium at {CHROMIUM}: apt-get install -y chromium, or set RACELAB_CHROMIUM to its path.")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """Give a fresh page (own cookies) whose waits time out after 20 s instead of Playwright's 30 s."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shot(request):
    """``shot(page, "state")`` saves ``reports/latest/screenshots/<test>-<state>.png`` and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, state):
        path = SCREENSHOTS / f"{request.node.name.removeprefix('test_')}-{state}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save

