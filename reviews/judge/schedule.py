"""The judge's cron entry: the sweep that re-enqueues items stuck in ``pending_judge``.

Every ``HITL_RECONCILE_INTERVAL`` seconds (e.g. after Redis was down during
ingest). Registered by ``hitlplatform.schedule``.
"""

from django.conf import settings
from rq import cron

from reviews.judge.jobs import judge_requeue_stuck_job


def schedule_register() -> None:
    cron.register(
        judge_requeue_stuck_job, queue_name="judge", interval=settings.HITL_RECONCILE_INTERVAL
    )
