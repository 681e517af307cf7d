"""RQ cron schedule for monitoring: ``python manage.py rqcron reviews.cron_monitoring``.

Run one of these next to the workers. It enqueues the webhook sweep every
minute and the drift evaluation every fifteen minutes.
"""

from rq import cron

from reviews.jobs_webhooks import drift_evaluate_job, webhooks_sweep_job

cron.register(webhooks_sweep_job, queue_name="webhooks", interval=60)
cron.register(drift_evaluate_job, queue_name="default", interval=15 * 60)
