"""Exports' cron entry: the sweep of exports whose build job died, every five minutes."""

from rq import cron

from datasets.jobs import exports_sweep_job


def schedule_register() -> None:
    cron.register(exports_sweep_job, queue_name="default", interval=5 * 60)
