"""One spelling for the caller in history rows and exports."""

import pytest

from reviews.principals import ApiClient, principal_label
from reviews.services.projects import api_key_create


@pytest.mark.django_db
def test_an_api_key_is_named_by_its_prefix(project):
    key, _raw = api_key_create(project=project, name="client")
    client = ApiClient(key=key)
    assert principal_label(client) == f"API key {key.prefix}" == str(client)


def test_a_user_is_named_by_their_username(django_user_model):
    assert principal_label(django_user_model(username="alice")) == "user alice"


def test_no_caller_has_no_label():
    assert principal_label(None) == ""
