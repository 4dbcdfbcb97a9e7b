"""The core app: installs a race-point controller at start-up when one is configured."""
from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import import_string


class CoreConfig(AppConfig):
    name = "label_studio.core"
    label = "core"

    def ready(self):
        """Call the ``RACE_CONTROLLER`` factory, if the setting names one; nothing otherwise."""
        if settings.RACE_CONTROLLER:
            import_string(settings.RACE_CONTROLLER)()
