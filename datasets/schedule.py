"""Exports' cron entry: the sweep of exports whose build died, every minute.

Every minute, so a killed build (heartbeat silent for ``HITL_EXPORT_HEARTBEAT_TIMEOUT``)
is marked failed within about two minutes; the sweep is one small query when
nothing is wrong.
"""

from rq import cron

from datasets.jobs import exports_sweep_job


def schedule_register() -> None:
    cron.register(exports_sweep_job, queue_name="default", interval=60)
