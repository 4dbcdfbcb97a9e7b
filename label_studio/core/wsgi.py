"""WSGI entry point for gunicorn: ``label_studio.core.wsgi:application``."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings")
application = get_wsgi_application()
