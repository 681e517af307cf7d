"""The judge's cron entry: the sweep that re-enqueues items in ``pending_judge``
that no job holds (``judge_requeue_stuck``).

Every ``HITL_RECONCILE_INTERVAL`` seconds (a minute by default): after Redis
was down during ingest, lost its data in a restart (scheduled retries
included), or a worker was killed mid-job. Registered by ``hitlplatform.schedule``.
"""

from django.conf import settings
from rq import cron

from reviews.judge.jobs import judge_requeue_stuck_job


def schedule_register() -> None:
    cron.register(
        judge_requeue_stuck_job, queue_name="judge", interval=settings.HITL_RECONCILE_INTERVAL
    )
