"""Handing items to the judge: the jobs enqueued when items enter ``pending_judge``.

The lifecycle (ingest, the requeue sweep) enqueues ``reviews.judge.jobs`` by
name after commit; the judge package does the calling and routing. Redis is
only a trigger: an item whose job is lost stays in ``pending_judge`` until the
sweep enqueues it again.
"""

import math

from django.conf import settings
from rq import Retry

from hitlplatform.queues import enqueue_on_commit
from reviews.models import JudgeConfig, Project

JUDGE_QUEUE = "judge"
JUDGE_JOB = "reviews.judge.jobs.judge_items_job"


def judge_config_active(*, project: Project) -> JudgeConfig | None:
    """The project's enabled judge configuration, or None (one query)."""
    return JudgeConfig.objects.filter(project=project, enabled=True).first()


def judge_job_options(*, config: JudgeConfig | None, chunk_size: int) -> dict:
    """RQ options for one judge job: the retry policy and a timeout that fits the chunk."""
    options: dict = {}
    timeout = config.timeout_seconds if config else 30.0
    concurrency = config.max_concurrency if config else 1
    waves = math.ceil(chunk_size / max(1, concurrency))
    options["job_timeout"] = int(waves * (timeout + 5) + 120)
    retries = config.max_retries if config else 0
    if retries:
        base = max(0, settings.HITL_JUDGE_RETRY_BACKOFF)
        options["retry"] = Retry(max=retries, interval=[base * 2**n for n in range(retries)])
        options["meta"] = {"max_retries": retries}
    return options


def judge_chunks(ids: list[int]) -> list[list[int]]:
    size = max(1, settings.HITL_JUDGE_CHUNK_SIZE)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def judge_enqueue(*, config: JudgeConfig, item_ids: list[int]) -> int:
    """Enqueue judge jobs for ``item_ids`` once the current transaction commits.

    One job per chunk of ``HITL_JUDGE_CHUNK_SIZE`` items, never one per item.
    If Redis is down the items stay in ``pending_judge`` and the requeue
    sweep enqueues them later. Returns the number of jobs.
    """
    chunks = judge_chunks(item_ids)
    for chunk in chunks:
        enqueue_on_commit(
            JUDGE_QUEUE,
            JUDGE_JOB,
            chunk,
            **judge_job_options(config=config, chunk_size=len(chunk)),
        )
    return len(chunks)
