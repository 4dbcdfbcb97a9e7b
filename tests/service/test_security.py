"""Security of the app itself: who sees which health figures, throttled failed logins, one-time login links.

The served stack (passwords of its PostgreSQL and Redis, secrets off command lines) is
tested in ``test_served_security.py``.
"""
import pytest
from django.core import signing
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from label_studio.core import login_links
from label_studio.data_import.models import FileUpload
from tests.factories import ProjectFactory, UserFactory

HEALTH = "/api/health/import-flow"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    """Start and end every test with no failed attempt counted (the counts outlive a test's database)."""
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


@pytest.fixture
def failures_allowed(settings):
    """Allow 3 failed authentications per client and minute."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"failed_authentication": "3/min"}}
    return 3


def ghost(project):
    """Create a completed file upload without tasks (a count mismatch) in ``project``; return its id."""
    return FileUpload.objects.create(project=project, user=project.created_by, file="ghost.csv", status="completed").id


# --- /api/health/import-flow ----------------------------------------------------------------------------------


def test_health_gives_strangers_the_counts_but_no_file_ids(project):
    ghost(project)

    response = APIClient().get(HEALTH)

    assert response.status_code == 503  # the mismatch makes it unhealthy, for everyone to see
    metrics = response.json()["metrics"]
    assert metrics["count_mismatches"] == 1 and metrics["stuck_files"] == 0
    assert "count_mismatch_ids" not in metrics and "stuck_file_ids" not in metrics, metrics


def test_health_lists_a_user_only_the_ids_of_their_own_files(client_for, project):
    mine = ghost(project)
    theirs = ghost(ProjectFactory())

    metrics = client_for(project.created_by).get(HEALTH).json()["metrics"]
    strangers = client_for(UserFactory()).get(HEALTH).json()["metrics"]

    assert metrics["count_mismatch_ids"] == [mine] and theirs not in metrics["count_mismatch_ids"]
    assert strangers["count_mismatch_ids"] == [] and strangers["stuck_file_ids"] == []
    assert metrics["count_mismatches"] == strangers["count_mismatches"] == 2  # the counts stay whole-database


def test_health_refuses_a_wrong_token_instead_of_answering_anonymously(db):
    response = APIClient(HTTP_AUTHORIZATION="Token wrong").get(HEALTH)
    assert response.status_code == 401


# --- API tokens ------------------------------------------------------------------------------------------------


def test_a_token_is_its_users_and_nobody_elses(user):
    token = Token.objects.create(user=user)
    other = UserFactory()
    Token.objects.create(user=other)
    ProjectFactory(created_by=other)

    response = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/projects")

    assert response.status_code == 200 and response.json()["results"] == []  # not the other user's project
    request = response.wsgi_request
    assert request.user == user and request.user.username == user.username
    assert request.auth.key == token.key and request.auth.created == token.created


def test_the_token_of_an_inactive_user_is_refused_as_drf_refuses_it(user):
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()

    response = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/projects")

    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."
    assert APIClient(HTTP_AUTHORIZATION="Token nope").get("/api/projects").json()["detail"] == "Invalid token."


# --- failed authentication is throttled -------------------------------------------------------------------------


def test_wrong_tokens_are_refused_with_429_and_retry_after_once_the_rate_is_used_up(failures_allowed, user):
    good = Token.objects.create(user=user).key
    guesser = APIClient(REMOTE_ADDR="10.0.0.7")

    statuses = [guesser.get("/api/projects", HTTP_AUTHORIZATION=f"Token guess{i}").status_code
                for i in range(failures_allowed + 1)]
    throttled = guesser.get("/api/projects", HTTP_AUTHORIZATION=f"Token {good}")

    assert statuses == [401] * failures_allowed + [429]
    # A right guess is refused too while the address is throttled: otherwise guessing would go on at full speed.
    assert throttled.status_code == 429 and 0 < int(throttled["Retry-After"]) <= 60, throttled.json()
    assert "Too many failed authentication attempts" in throttled.json()["detail"]
    other_address = APIClient(REMOTE_ADDR="10.0.0.8").get("/api/projects", HTTP_AUTHORIZATION=f"Token {good}")
    assert other_address.status_code == 200


def test_a_forged_forwarded_for_header_does_not_escape_the_throttle(failures_allowed, db):
    guesser = APIClient(REMOTE_ADDR="10.0.0.7")
    statuses = [guesser.get("/api/projects", HTTP_AUTHORIZATION=f"Token guess{i}",
                            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code for i in range(failures_allowed + 1)]
    assert statuses == [401] * failures_allowed + [429]


def test_requests_without_a_token_are_not_counted_as_failures(failures_allowed, user):
    anonymous = APIClient()
    assert {anonymous.get("/api/projects").status_code for _ in range(failures_allowed + 2)} == {401}
    assert APIClient().get("/api/projects", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"
                           ).status_code == 200


def test_wrong_passwords_on_the_login_page_are_throttled(failures_allowed, user):
    user.set_password("right horse battery")
    user.save()
    browser = Client()

    statuses = [browser.post("/login", {"username": user.username, "password": f"wrong{i}"}).status_code
                for i in range(failures_allowed)]
    throttled = browser.post("/login", {"username": user.username, "password": "right horse battery"})

    assert statuses == [200] * failures_allowed  # the form again, with its error
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert "Too many failed authentication attempts" in throttled.content.decode()
    assert "_auth_user_id" not in browser.session


# --- logging in -------------------------------------------------------------------------------------------------


def test_a_token_in_the_login_address_logs_nobody_in(user):
    browser = Client()
    browser.get(f"/login?token={Token.objects.create(user=user).key}")
    assert "_auth_user_id" not in browser.session
    assert browser.get("/").status_code == 302  # still sent to the login page


def test_a_login_link_logs_in_only_by_its_csrf_checked_post_and_only_once(user):
    link = login_links.link_path(user)
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(link)
    assert page.status_code == 200 and f"Log in as {user.username}" in page.content.decode()
    assert "_auth_user_id" not in browser.session  # opening the link logs nobody in
    assert page["X-Frame-Options"] == "DENY"  # nor can another site frame the button and click it for you
    assert Client(enforce_csrf_checks=True).post(link).status_code == 403  # a cross-site POST has no CSRF token

    logged_in = browser.post(link, {"csrfmiddlewaretoken": page.context["csrf_token"], "next": "/"})
    assert logged_in.status_code == 302 and logged_in["Location"] == "/"
    assert browser.session["_auth_user_id"] == str(user.pk)

    again = Client()
    assert again.post(link).status_code == 403 and "used already" in again.get(link).content.decode()
    assert "_auth_user_id" not in again.session


def test_a_login_link_expires(settings, user):
    link = login_links.link_path(user)
    settings.LOGIN_LINK_MAX_AGE = -1  # every link is older than that
    response = Client().post(link)
    assert response.status_code == 403 and "has expired" in response.content.decode()


def test_a_login_link_signed_with_another_secret_key_is_refused(user):
    forged = signing.TimestampSigner(key="the public development key", salt=login_links.SALT).sign_object(
        {"user": user.pk, "last_login": ""})
    response = Client().post(f"/login/link/{forged}")
    assert response.status_code == 403 and "not a valid login link" in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_two_redemptions_of_one_link_log_in_once(user):
    key = login_links.make_key(user)
    assert login_links.redeem(key) == user
    with pytest.raises(login_links.InvalidLink, match="used already"):
        login_links.redeem(key)


# --- the API token never on a command line ---------------------------------------------------------------------


def test_ensure_api_user_takes_the_token_from_the_environment_or_a_file(db, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RACELAB_API_TOKEN", "from-the-environment")
    call_command("ensure_api_user", "--username", "env-user")
    assert capsys.readouterr().out.strip() == "from-the-environment"

    monkeypatch.delenv("RACELAB_API_TOKEN")
    (tmp_path / "token").write_text("from-a-file\n")
    call_command("ensure_api_user", "--username", "file-user", "--token-file", str(tmp_path / "token"))
    assert capsys.readouterr().out.strip() == "from-a-file"
    assert Token.objects.get(user__username="file-user").key == "from-a-file"
    assert not Token.objects.get(user__username="file-user").user.has_usable_password()  # no default password

    # The old `--token KEY` now abbreviates --token-file: a key given on the command line is never used as one.
    with pytest.raises(CommandError, match="Cannot read on-the-command-line.*RACELAB_API_TOKEN"):
        call_command("ensure_api_user", "--token", "on-the-command-line")
