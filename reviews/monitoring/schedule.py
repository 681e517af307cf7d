"""Monitoring's cron entry: drift evaluation every fifteen minutes (``hitlplatform.schedule``)."""

from rq import cron

from reviews.monitoring.jobs import drift_evaluate_job


def schedule_register() -> None:
    cron.register(drift_evaluate_job, queue_name="default", interval=15 * 60)
