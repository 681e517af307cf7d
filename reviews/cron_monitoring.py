"""RQ cron schedule for monitoring: ``python manage.py rqcron reviews.cron_monitoring``.

Run one of these next to the workers. It enqueues the webhook sweep every
minute, the drift evaluation every fifteen minutes and the export sweep
(exports whose build job died) every five.
"""

from rq import cron

from datasets.jobs import exports_sweep_job
from reviews.jobs_webhooks import drift_evaluate_job, webhooks_sweep_job

cron.register(webhooks_sweep_job, queue_name="webhooks", interval=60)
cron.register(drift_evaluate_job, queue_name="default", interval=15 * 60)
cron.register(exports_sweep_job, queue_name="default", interval=5 * 60)
