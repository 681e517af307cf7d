"""``manage.py cron``: the platform's cron schedule (``hitlplatform.schedule``): the
judge requeue sweep, the webhook sweep, the export sweep, drift alerts.

``rqcron hitlplatform.schedule`` runs the same entries but exits when Redis goes
away; this one waits for Redis to come back (``hitlplatform.workers.CronScheduler``).
"""

import logging

from django.core.management.base import BaseCommand

from hitlplatform.workers import CronScheduler

SCHEDULE = "hitlplatform.schedule"


class Command(BaseCommand):
    help = (
        "Run the platform's cron schedule (judge and webhook sweeps, export sweep, drift "
        "alerts); one per deployment is enough. Survives Redis outages."
    )

    def handle(self, *args, **options):
        scheduler = CronScheduler(logging_level=logging.INFO)
        scheduler.load_config_from_file(SCHEDULE)
        self.stdout.write(f"Cron schedule {SCHEDULE}: {len(scheduler.get_jobs())} entries")
        scheduler.start()
