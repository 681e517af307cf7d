import pytest

from reviews.services.projects import api_key_create
from tests import factories


@pytest.fixture
def agents(db):
    """A project taking OTLP traces, one item per LLM span (the default)."""
    return factories.make_project(name="Weather agents", slug="agents", mode="gate")


@pytest.fixture
def agents_key(agents) -> str:
    return api_key_create(project=agents, name="agent exporter")[1]
