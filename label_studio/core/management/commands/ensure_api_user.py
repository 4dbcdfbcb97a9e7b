"""Create (or keep) a user and its API token; print the token."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--username", default="racelab")
        parser.add_argument("--password", default=None, help="Set this password too (for the file manager page).")
        parser.add_argument("--token", default=None, help="Use this token instead of a random one.")

    def handle(self, *args, username, password, token, **options):
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": f"{username}@localhost"})
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        if token:
            Token.objects.filter(user=user).exclude(key=token).delete()
            Token.objects.get_or_create(user=user, key=token)
        self.stdout.write(Token.objects.get_or_create(user=user)[0].key)
