"""Webhooks' cron entry: the sweep of past-due deliveries, every
``HITL_WEBHOOK_SWEEP_INTERVAL`` seconds (a minute by default)."""

from django.conf import settings
from rq import cron

from reviews.webhooks.jobs import webhooks_sweep_job


def schedule_register() -> None:
    cron.register(
        webhooks_sweep_job, queue_name="webhooks", interval=settings.HITL_WEBHOOK_SWEEP_INTERVAL
    )
