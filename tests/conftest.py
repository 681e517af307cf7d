import os
import uuid

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from reviews.selectors import api_key_forget
from reviews.services.projects import api_key_create
from tests import factories
from tests.datasets.seaweedfs import SeaweedFS
from tests.s3 import BUCKET


def pytest_configure(config):
    # A fresh cache namespace per run: throttle counters of earlier runs (same
    # API key ids after the test database is recreated) must not leak in.
    for cache in settings.CACHES.values():
        cache["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"

    # The suite tests against the real services; running it on SQLite would
    # quietly skip what matters (row locks, SKIP LOCKED, concurrent ingest).
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql" and not os.environ.get("HITL_ALLOW_SQLITE_TESTS"):
        raise pytest.UsageError(
            "The test suite needs PostgreSQL: run `make test` or set DATABASE_URL."
        )


@pytest.fixture(autouse=True)
def _api_keys_looked_up_afresh():
    """Each test starts with no API key remembered by ``api_key_recent``."""
    api_key_forget()
    yield
    api_key_forget()


@pytest.fixture
def project(db):
    return factories.make_project(name="Clinical answers", slug="clinical", mode="gate")


@pytest.fixture
def monitor_project(db):
    return factories.make_project(
        name="Contract Q&A",
        slug="contracts",
        mode="monitor",
        confidence_threshold=0.7,
        risk_keywords=["lawsuit", "overdose"],
        audit_sample_rate=0.0,
    )


@pytest.fixture
def api_key(project):
    _key, raw = api_key_create(project=project, name="test client")
    return raw


@pytest.fixture
def client_api(api_key):
    """An API client authenticated with the gate project's key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")


@pytest.fixture
def reviewer(django_user_model, project):
    user = django_user_model.objects.create_user("rita", password="rita-pass-1", is_staff=True)
    factories.add_member(project, user, "reviewer")
    return user


@pytest.fixture
def second_reviewer(django_user_model, project):
    user = django_user_model.objects.create_user("sam", password="sam-pass-1", is_staff=True)
    factories.add_member(project, user, "reviewer")
    return user


@pytest.fixture
def senior(django_user_model, project):
    user = django_user_model.objects.create_user("sena", password="sena-pass-1", is_staff=True)
    factories.add_member(project, user, "senior")
    return user


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A real S3 server for the session (SeaweedFS on free loopback ports).

    If ``weed`` cannot start, every test that needs it fails with the reason
    and the server's log: a missing service is a failure, never a skip.
    """
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        server.bucket_create(BUCKET)
        yield server
    finally:
        server.stop()
