"""One-time login links: what ``racelab serve`` prints instead of a default password.

A link is ``/login/link/<key>``, the key a :class:`~django.core.signing.TimestampSigner`
signature (``SECRET_KEY``, salted) of the user's id and ``last_login``. It expires after
``LOGIN_LINK_MAX_AGE`` seconds, and it works once: redeeming it moves ``last_login``, which
every key signed before no longer matches. Opening a link logs nobody in; the page's POST
does (see :mod:`label_studio.core.pages`), so another site cannot log your browser in as
someone else with a link of theirs.
"""
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import reverse
from django.utils import timezone

SALT = "racelab.login-link"


def make_key(user):
    """Return a new login-link key for ``user``; nothing is stored."""
    last_login = user.last_login.isoformat() if user.last_login else ""
    return signing.TimestampSigner(salt=SALT).sign_object({"user": user.pk, "last_login": last_login})


def link_path(user):
    """Return the path of a new login link for ``user``, e.g. ``/login/link/eyJ…``."""
    return reverse("login-link", kwargs={"key": make_key(user)})


class InvalidLink(Exception):
    """The link is forged, expired, already used or its user is gone; the message says which and what to do."""


def peek(key):
    """Return the active user ``key`` would log in, without using it up; raise InvalidLink otherwise."""
    payload = _payload(key)
    user = get_user_model().objects.filter(pk=payload["user"], is_active=True).first()
    if user is None or (user.last_login.isoformat() if user.last_login else "") != payload["last_login"]:
        raise InvalidLink(USED)
    return user


def redeem(key):
    """Use up ``key`` and return its user; raise InvalidLink if it is not valid now.

    The claim is one conditional UPDATE of ``last_login``: of two requests redeeming the
    same key at once, exactly one gets the user and the other gets InvalidLink.
    """
    payload = _payload(key)
    users = get_user_model().objects.filter(pk=payload["user"], is_active=True)
    if payload["last_login"]:
        users = users.filter(last_login=datetime.fromisoformat(payload["last_login"]))
    else:
        users = users.filter(last_login__isnull=True)
    if not users.update(last_login=timezone.now()):
        raise InvalidLink(USED)
    return get_user_model().objects.get(pk=payload["user"])


USED = "This login link was used already. Each link works once: get a new one (see below)."
NEW_LINK = ("`racelab serve` prints a new link when you press Enter in its terminal; or run "
            "`python -m django login_link` with the app's environment.")


def _payload(key):
    try:
        return signing.TimestampSigner(salt=SALT).unsign_object(key, max_age=settings.LOGIN_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise InvalidLink(f"This login link has expired (links are valid for {settings.LOGIN_LINK_MAX_AGE} s, "
                          "RACELAB_LOGIN_LINK_MAX_AGE).") from None
    except signing.BadSignature:
        raise InvalidLink("This is not a valid login link. Copy the whole link again.") from None
