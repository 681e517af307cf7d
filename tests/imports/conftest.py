import pytest
from django.test import Client

from tests import factories


@pytest.fixture
def import_dir(settings, tmp_path):
    """The imports storage in a temporary directory."""
    directory = tmp_path / "imports"
    settings.HITL_IMPORT_DIR = directory
    settings.STORAGES = {
        **settings.STORAGES,
        "imports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(directory)},
        },
    }
    return directory


@pytest.fixture
def inline_jobs(settings):
    settings.RQ_INLINE = True


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user("ada", password="ada-pass-1", is_staff=True)
    factories.add_member(project, user, "admin")
    return user


@pytest.fixture
def admin_client(project_admin):
    client = Client()
    client.force_login(project_admin)
    return client


@pytest.fixture
def other_project(db):
    return factories.make_project(name="Other", slug="other")


@pytest.fixture
def other_admin(django_user_model, other_project):
    user = django_user_model.objects.create_user("otto", password="otto-pass-1", is_staff=True)
    factories.add_member(other_project, user, "admin")
    return user
