"""Webhooks' cron entry: the sweep of past-due deliveries, every minute."""

from rq import cron

from reviews.webhooks.jobs import webhooks_sweep_job


def schedule_register() -> None:
    cron.register(webhooks_sweep_job, queue_name="webhooks", interval=60)
