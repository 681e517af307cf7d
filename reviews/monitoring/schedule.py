"""Monitoring's cron entries (``hitlplatform.schedule``): the rollup fold every
``HITL_ROLLUP_FOLD_INTERVAL`` seconds (default 60; the dashboard says how fresh its figures
are) and drift evaluation every fifteen minutes."""

from django.conf import settings
from rq import cron

from reviews.monitoring.jobs import drift_evaluate_job, rollups_fold_job


def schedule_register() -> None:
    cron.register(
        rollups_fold_job,
        queue_name="default",
        interval=getattr(settings, "HITL_ROLLUP_FOLD_INTERVAL", 60),
    )
    cron.register(drift_evaluate_job, queue_name="default", interval=15 * 60)
