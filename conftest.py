"""Project-wide test settings of the reference app, shared by ``tests/`` and ``scenarios/``."""
import pytest


@pytest.fixture
def use_redis(use_redis, settings):
    """The plugin's ``use_redis``, plus the reference app's own switch: jobs go to Redis once ``REDIS_URL`` is set."""
    settings.REDIS_URL = use_redis
    return use_redis
