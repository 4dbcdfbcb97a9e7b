"""Print the path of a one-time login link for a user, e.g. ``/login/link/eyJ…``; append it to the app's URL.

The link expires after ``LOGIN_LINK_MAX_AGE`` seconds and works once. Run it with the
app's environment (its ``DJANGO_SECRET_KEY`` and ``DATABASE_URL``): a link signed with
another secret key is refused.
"""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from label_studio.core.login_links import link_path


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--username", default="racelab")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}; create one with `python -m django ensure_api_user "
                               f"--username {username}`.")
        self.stdout.write(link_path(user))
