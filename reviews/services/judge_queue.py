"""Handing items to the judge: the jobs enqueued when items enter ``pending_judge``.

The lifecycle (ingest, the requeue sweep) enqueues ``reviews.judge.jobs`` by
name after commit; the judge package does the calling and routing. Redis is
only a trigger: an item whose job is lost stays in ``pending_judge`` until the
sweep enqueues it again.
"""

import logging
import math
from datetime import timedelta

from django.conf import settings
from redis.exceptions import RedisError

from hitlplatform.degraded import degraded_record
from hitlplatform.queues import enqueue_on_commit, get_queue
from reviews.models import JudgeConfig, Project, ReviewItem

logger = logging.getLogger(__name__)

JUDGE_QUEUE = "judge"
JUDGE_JOB = "reviews.judge.jobs.judge_items_job"


def judge_config_active(*, project: Project) -> JudgeConfig | None:
    """The project's enabled judge configuration, or None (one query, none when the
    project was loaded with it: ``select_related("judge_config")``)."""
    related = Project.judge_config.related
    if related.is_cached(project):
        config = related.get_cached_value(project)
        return config if config is not None and config.enabled else None
    return JudgeConfig.objects.filter(project=project, enabled=True).first()


def judge_job_options(*, config: JudgeConfig | None, chunk_size: int) -> dict:
    """RQ options for one judge job: a timeout that fits the chunk.

    No RQ ``Retry``: its waits would be fixed by whichever process enqueues
    (the web process at ingest). A job whose calls fail transiently schedules
    the next attempt itself (:func:`judge_retry_enqueue`, in the worker).
    """
    timeout = config.timeout_seconds if config else 30.0
    concurrency = config.max_concurrency if config else 1
    waves = math.ceil(chunk_size / max(1, concurrency))
    return {"job_timeout": int(waves * (timeout + 5) + 120)}


def judge_retry_delay(*, attempt: int) -> timedelta:
    """The wait before attempt number ``attempt`` (2, 3, ...): BACKOFF times 1, 2, 4 ... s.

    ``HITL_JUDGE_RETRY_BACKOFF`` is read here, by the worker whose job failed,
    when it schedules the retry.
    """
    base = max(0, settings.HITL_JUDGE_RETRY_BACKOFF)
    return timedelta(seconds=base * 2 ** max(attempt - 2, 0))


def judge_retry_enqueue(*, item_ids: list[int], attempt: int) -> int:
    """Schedule attempt number ``attempt`` for ``item_ids`` after :func:`judge_retry_delay`.

    Called by a judge job (outside any transaction) for the items whose calls
    failed transiently; one job per project and chunk. Needs RQ's scheduler
    (every worker runs one, ``hitlplatform.workers``). If Redis refuses, the
    items stay in ``pending_judge`` with no job and the requeue sweep enqueues
    them. Returns the number of jobs scheduled.
    """
    if not item_ids:
        return 0
    by_project: dict[int, list[int]] = {}
    for pk, project_id in (
        ReviewItem.objects.filter(pk__in=item_ids).order_by("pk").values_list("pk", "project_id")
    ):
        by_project.setdefault(project_id, []).append(pk)
    configs = {c.project_id: c for c in JudgeConfig.objects.filter(project_id__in=by_project)}
    delay = judge_retry_delay(attempt=attempt)
    # RQ's scheduler keeps whole seconds and may run a job up to one second early.
    delay += timedelta(seconds=1)
    jobs = 0
    try:
        queue = get_queue(JUDGE_QUEUE)
        for project_id, ids in by_project.items():
            for chunk in judge_chunks(ids):
                options = judge_job_options(config=configs.get(project_id), chunk_size=len(chunk))
                queue.enqueue_in(delay, JUDGE_JOB, chunk, attempt=attempt, **options)
                jobs += 1
    except RedisError as exc:
        logger.warning("Could not schedule judge attempt %d for %s: %s", attempt, item_ids, exc)
        degraded_record(kind="enqueue", message=f"judge retry not scheduled ({exc})")
    return jobs


def judge_chunks(ids: list[int]) -> list[list[int]]:
    """``ids`` in as few chunks of at most ``HITL_JUDGE_CHUNK_SIZE`` as fit, of even size.

    A job's calls are bounded by its project's ``max_concurrency``, so a batch
    is judged in as many waves as its largest chunk holds: 600 items go as two
    jobs of 300 (6 waves of 50 each, on two workers at once), not 500 and 100.
    """
    size = max(1, settings.HITL_JUDGE_CHUNK_SIZE)
    count = -(-len(ids) // size)
    if count <= 1:
        return [ids] if ids else []
    base, extra = divmod(len(ids), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + base + (1 if index < extra else 0)
        chunks.append(ids[start:end])
        start = end
    return chunks


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
