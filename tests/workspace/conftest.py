import pytest

from reviews.services.accounts import user_roles_sync
from tests import factories


@pytest.fixture
def double_project(db):
    """A gate project that needs two blind reviews per item."""
    return factories.make_project(name="Drug safety", slug="drug-safety", reviews_required=2)


@pytest.fixture
def other_project(db):
    return factories.make_project(name="Tax advice", slug="tax")


@pytest.fixture
def outsider(django_user_model, other_project):
    """A reviewer of another project only."""
    user = django_user_model.objects.create_user("otto", password="otto-pass-1", is_staff=True)
    factories.add_member(other_project, user, "reviewer")
    user_roles_sync(user=user)
    return user


@pytest.fixture
def double_reviewers(django_user_model, double_project):
    users = []
    for name in ("dora", "dave", "dina"):
        user = django_user_model.objects.create_user(name, password=f"{name}-pass-1", is_staff=True)
        factories.add_member(double_project, user, "reviewer")
        user_roles_sync(user=user)
        users.append(user)
    return users


def queue(project, count: int, **overrides):
    """Ingest ``count`` items into ``project`` and return them in submission order."""
    payloads = [factories.item_payload(**overrides) for _ in range(count)]
    return factories.ingest(project, *payloads)
