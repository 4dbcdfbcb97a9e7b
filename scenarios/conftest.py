"""Fixtures of the race scenarios: the ``scenario`` of a test, and the user, project and API client it acts on."""
import pytest

from scenarios.common import Scenario


@pytest.fixture
def scenario(request, settings, race_history, _race_seed, tmp_path):
    """Give the :class:`~scenarios.common.Scenario` of this test: its module's ``RACE``, its ``mode``, its seed."""
    return Scenario(request.module.RACE, request.getfixturevalue("mode"), _race_seed, settings, race_history,
                    tmp_path / "media")


@pytest.fixture
def user(transactional_db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def project(user):
    from tests.factories import ProjectFactory

    return ProjectFactory(created_by=user)


@pytest.fixture
def api(user):
    """A DRF API client authenticated as ``user`` by token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client
