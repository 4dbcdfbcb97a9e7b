"""Project-wide test settings shared by ``tests/`` and ``scenarios/``."""
import pytest


@pytest.fixture
def rq_worker_env(settings):
    """Give real worker processes the test's fix flags, as they are when the workers start."""
    from label_studio.core.fixes import fixes_spec

    return lambda: {"RACELAB_FIXES": fixes_spec(settings.IMPORT_FIXES)}
