"""The file manager page in headless Chromium against a served app (gunicorn + rq worker processes).

Each test saves screenshots of the states it reaches under ``reports/latest/screenshots/``.
Every wait is a Playwright expectation with a timeout and a message; nothing sleeps.
"""
import json
import re
import subprocess
import sys
import urllib.request

import pytest

from tests.browser.conftest import PASSWORD
from tests.conftest import csv_rows, pdf_bytes

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' installs Playwright")

expect = playwright_api.expect
PlaywrightTimeout = playwright_api.TimeoutError

# Record every badge the table ever shows, render by render, so a test can prove what never appeared.
RECORD_BADGES = """() => {
  window.seenBadges = [];
  new MutationObserver(() => {
    for (const tr of document.querySelectorAll("#uploads tr[data-upload-id]")) {
      window.seenBadges.push({optimistic: tr.classList.contains("optimistic"),
                              name: tr.querySelector(".file-name").textContent,
                              badge: tr.querySelector(".badge").textContent});
    }
  }).observe(document.getElementById("uploads"), {childList: true, subtree: true});
}"""


def api_call(app, method, path, body=None, token=None):
    """Call the served API with ``Authorization: Token …``; return the decoded JSON body."""
    request = urllib.request.Request(f"{app.url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Token {token or app.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def create_project(app, title, token=None):
    """Create a project through the API as the token's user; return its id."""
    return api_call(app, "POST", "/api/projects", {"title": title}, token=token)["id"]


def create_user(app, username):
    """Create a user (no password) in the served app's database; return its API token."""
    return subprocess.run([sys.executable, "-m", "django", "ensure_api_user", "--username", username],
                          env=app.env, check=True, capture_output=True, text=True).stdout.strip()


def log_in(page, app, next_path=""):
    """Log ``page`` in the way a person does: open a one-time login link, then press its "Log in" button."""
    page.goto(app.login_link() + (f"?next={next_path}" if next_path else ""))
    page.get_by_role("button", name="Log in as racelab").click()


def open_files_logged_in(page, app, project_id):
    """Log ``page`` in through a one-time login link and land on the project's file manager."""
    log_in(page, app, f"/projects/{project_id}/files")
    expect(page.locator("#file-manager"), "the login link did not lead to the file manager").to_be_visible()
    expect(page.locator("#uploads"), "the file list never loaded").not_to_contain_text("Loading…")


def choose_file(page, name, content, mime="application/octet-stream"):
    page.set_input_files("#upload-files", files=[{"name": name, "mimeType": mime,
                                                  "buffer": content if isinstance(content, bytes) else content.encode()}])


def badge_of(page, name):
    """Return the badge of the listed (not optimistic) top-level row of file ``name``."""
    return page.locator("#uploads tr[data-upload-id]:not(.optimistic):not(.page)", has_text=name).locator(".badge")


def test_async_csv_shows_pending_then_its_count_and_polling_stops(slow_app, page, shot):
    page.goto(f"{slow_app.url}/")
    expect(page, "an anonymous visitor was not sent to the login page").to_have_url(re.compile(r"/login\?next=/$"))
    shot(page, "login")
    page.get_by_label("Username").fill("racelab")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("New project title").fill("Async CSV")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Async CSV"), "creating a project did not open its files").to_be_visible()
    manager = page.locator("#file-manager")
    expect(manager, "an empty project should not poll").to_have_attribute("data-polling", "false")

    page.evaluate(RECORD_BADGES)
    polls = []
    page.on("request", lambda request: "/file-uploads" in request.url and polls.append(request.url))
    choose_file(page, "rows.csv", csv_rows(7), "text/csv")
    expect(page.get_by_label("Import in background")).to_be_checked()
    page.get_by_role("button", name="Upload").click()

    expect(badge_of(page, "rows.csv"), "the listed row never showed its import as running").to_have_text(
        re.compile(r"^(Pending|Processing…)"), timeout=10_000)
    expect(page.locator("#banner"), "an error banner showed for a good upload").to_be_hidden()
    shot(page, "pending")
    expect(badge_of(page, "rows.csv"), "the import never showed its 7 tasks").to_have_text("7 tasks", timeout=30_000)
    shot(page, "completed")

    expect(manager, "polling went on after every file was final").to_have_attribute("data-polling", "false")
    polled = len(polls)
    # After a change the next poll comes within 500 ms; 2 s without one means polling has stopped.
    with pytest.raises(PlaywrightTimeout):
        page.wait_for_event("request", predicate=lambda request: "/file-uploads" in request.url, timeout=2_000)
    assert len(polls) == polled and polled >= 2, f"{polled} polls before the final state, {len(polls)} after"

    seen = page.evaluate("window.seenBadges")
    shown = [entry["badge"] for entry in seen if entry["name"] == "rows.csv"]
    assert not [badge for badge in shown if badge.startswith("0 task")], f"'0 tasks' was shown: {shown}"
    listed = [entry["badge"] for entry in seen if entry["name"] == "rows.csv" and not entry["optimistic"]]
    assert re.match(r"Pending|Processing…", listed[0]) and listed[-1] == "7 tasks", f"the row showed {listed}"


def test_bad_file_shows_the_error_naming_it_and_adds_no_row(app, page, shot):
    project_id = create_project(app, "Bad input")
    open_files_logged_in(page, app, project_id)
    page.get_by_label("Import in background").uncheck()
    choose_file(page, "good.json", json.dumps([{"text": "a"}, {"text": "b"}]), "application/json")
    page.get_by_role("button", name="Upload").click()
    expect(badge_of(page, "good.json"), "a synchronous import did not show its tasks").to_have_text("2 tasks")
    rows = page.locator("#uploads tr[data-upload-id]")
    expect(rows).to_have_count(1)

    choose_file(page, "broken.json", '{"text": "no closing brace"', "application/json")
    page.get_by_role("button", name="Upload").click()
    banner = page.get_by_role("alert")
    expect(banner, "the 400's detail was not shown").to_contain_text("broken.json")
    expect(page.get_by_role("button", name="Upload"), "the upload never finished").to_be_enabled()
    expect(page.locator("#uploads tr.optimistic"), "the failed file's pending row stayed").to_have_count(0)
    expect(rows, "a rejected file left a row in the table").to_have_count(1)
    shot(page, "error")
    assert len(api_call(app, "GET", f"/api/projects/{project_id}/file-uploads")) == 1


def test_fifty_page_pdf_shows_its_pages_folded_beneath(app, page, shot):
    project_id = create_project(app, "PDF")
    open_files_logged_in(page, app, project_id)
    choose_file(page, "report.pdf", pdf_bytes(50), "application/pdf")
    page.get_by_role("button", name="Upload").click()
    expect(badge_of(page, "report.pdf"), "the PDF never showed as importing").to_have_text(
        re.compile(r"^(Pending|Processing…|50 tasks)"))
    shot(page, "importing")
    expect(badge_of(page, "report.pdf"), "the PDF never reached 50 tasks").to_have_text("50 tasks", timeout=90_000)

    toggle = page.get_by_role("button", name="50 pages")
    expect(toggle, "the pages should start folded").to_have_attribute("aria-expanded", "false")
    pages = page.locator("#uploads tr.page")
    expect(pages).to_have_count(0)
    shot(page, "folded")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(pages, "unfolding did not show 50 page rows").to_have_count(50)
    expect(pages.first).to_contain_text("Page 1")
    expect(pages.last).to_contain_text("Page 50")
    expect(pages.locator(".badge", has_text="1 task"), "a page did not show its one task").to_have_count(50)
    shot(page, "unfolded")
    toggle.click()
    expect(pages, "folding did not hide the pages").to_have_count(0)


def test_a_user_sees_only_their_own_projects(app, page, shot):
    theirs = create_project(app, "Someone else's", token=create_user(app, "someone-else"))
    create_project(app, "Mine")
    page.goto(f"{app.url}/login/link/not-a-link")
    expect(page.get_by_role("alert"), "a forged login link was not refused").to_contain_text("not a valid login link")
    page.goto(f"{app.url}/login?token={app.token}")
    expect(page.get_by_role("button", name="Log in", exact=True), "a token in the address logged the browser in"
           ).to_be_visible()
    log_in(page, app)
    expect(page.get_by_role("link", name="Mine"), "the user's project is not listed").to_be_visible()
    expect(page.get_by_role("link", name="Someone else's"), "another user's project is listed").to_have_count(0)
    shot(page, "projects")

    response = page.goto(f"{app.url}/projects/{theirs}/files")
    assert response.status == 404, f"another user's file manager answered {response.status}, not 404"
    shot(page, "not-found")


def test_an_async_import_with_one_bad_file_shows_it_failed_and_the_other_imported(app, page, shot):
    project_id = create_project(app, "Partly failed")
    open_files_logged_in(page, app, project_id)
    page.set_input_files("#upload-files", files=[
        {"name": "good.json", "mimeType": "application/json", "buffer": json.dumps([{"text": "a"}, {"text": "b"}]).encode()},
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"text,n\nonly one\n"}])
    expect(page.get_by_label("Import in background")).to_be_checked()
    page.get_by_role("button", name="Upload").click()

    expect(badge_of(page, "good.json"), "the good file's tasks were not shown").to_have_text("2 tasks", timeout=30_000)
    expect(badge_of(page, "bad.csv"), "the bad file's failure was not shown with its reason").to_have_text(
        "Failed: 'bad.csv': row 2 does not have 2 columns like the header. Fix the row and upload it again.",
        timeout=30_000)
    expect(page.locator("#summary"), "the summary did not say one file failed and the other was imported").to_have_text(
        "All imports finished; 1 of 2 files failed and added no tasks; the rest were imported. "
        "Fix and upload only the failed file again.")
    shot(page, "partly-failed")
