"""Create (or keep) a user and its API token; print the token.

Secrets never come from the command line, which every local user can read (``ps``): the
token from ``$RACELAB_API_TOKEN`` or ``--token-file``, a password from ``$RACELAB_PASSWORD``
or ``--password-file``. With neither, the token is random and no password is set (log in
with a one-time link: ``login_link``).
"""
import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

TOKEN_ENV, PASSWORD_ENV = "RACELAB_API_TOKEN", "RACELAB_PASSWORD"


def secret(path, env):
    """Return the first line of the file at ``path``, else ``$env``, else None; raise CommandError if unreadable."""
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}. Give a readable file, or set ${env}.") from None
    return os.environ.get(env) or None


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--username", default="racelab")
        parser.add_argument("--token-file", default=None,
                            help=f"Use the token in this file instead of a random one (or set ${TOKEN_ENV}).")
        parser.add_argument("--password-file", default=None,
                            help=f"Set the password in this file too (or set ${PASSWORD_ENV}); default: none.")

    def handle(self, *args, username, token_file, password_file, **options):
        token, password = secret(token_file, TOKEN_ENV), secret(password_file, PASSWORD_ENV)
        user, created = get_user_model().objects.get_or_create(username=username,
                                                               defaults={"email": f"{username}@localhost"})
        if password or created:
            user.set_password(password)  # None: unusable, no password logs in
            user.save(update_fields=["password"])
        if token:
            Token.objects.filter(user=user).exclude(key=token).delete()
            Token.objects.get_or_create(user=user, key=token)
        self.stdout.write(Token.objects.get_or_create(user=user)[0].key)
