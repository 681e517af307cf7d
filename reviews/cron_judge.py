"""RQ cron schedule for the judge: ``python manage.py rqcron reviews.cron_judge``.

Run one next to the workers (one per deployment is enough). Every
``HITL_RECONCILE_INTERVAL`` seconds it enqueues the sweep that re-enqueues
items stuck in ``pending_judge`` (e.g. after Redis was down during ingest).
"""

from django.conf import settings
from rq import cron

from reviews.jobs import judge_reconcile_job

cron.register(judge_reconcile_job, queue_name="judge", interval=settings.HITL_RECONCILE_INTERVAL)
