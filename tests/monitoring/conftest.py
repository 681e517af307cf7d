import pytest

from tests import factories
from tests.monitoring.receiver import WebhookReceiver


@pytest.fixture
def auditor(django_user_model):
    return django_user_model.objects.create_user("audrey", password="audrey-pass-1", is_staff=True)


@pytest.fixture
def audited_project(db):
    """A monitor-mode project that audit-samples every auto-approved output."""
    return factories.make_project(
        name="Support answers",
        slug="support",
        mode="monitor",
        confidence_threshold=0.5,
        audit_sample_rate=1.0,
        drift_min_samples=30,
        drift_margin=0.05,
        monitoring_window_days=7,
        accuracy_target=0.9,
    )


@pytest.fixture
def receiver():
    started = WebhookReceiver(secret="receiver-shared-secret").start()
    yield started
    started.stop()


@pytest.fixture
def webhook_settings(settings):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    settings.HITL_WEBHOOK_TIMEOUT = 2
    settings.HITL_WEBHOOK_BACKOFF_SECONDS = 1
    settings.HITL_WEBHOOK_BACKOFF_MAX_SECONDS = 2
    return settings
