"""The item search's cron entry (``hitlplatform.schedule``): the sweep that indexes
pending items every ``HITL_SEARCH_SWEEP_INTERVAL`` seconds (a minute by default),
after Redis was down at a write or an indexer job was lost."""

from django.conf import settings
from rq import cron

from reviews.search.jobs import search_index_sweep_job


def schedule_register() -> None:
    cron.register(
        search_index_sweep_job, queue_name="default", interval=settings.HITL_SEARCH_SWEEP_INTERVAL
    )
