"""RQ jobs of the reviews app. Thin: they take ids, call a service, report counts."""

from django.conf import settings
from rq import get_current_job

from reviews.judge.services import judge_pending_items, judge_requeue_stuck


class JudgeRetryError(Exception):
    """Some judge calls failed transiently; RQ runs the job again after a backoff."""


def judge_items_job(item_ids: list[int]) -> dict[str, int]:
    """Judge and route the listed items that are still pending_judge.

    Transient failures raise :class:`JudgeRetryError` while the job has RQ
    retries left; on the last attempt (or inline, without Redis) they are
    recorded as judge errors and the items go to a human.
    """
    job = get_current_job()
    retrying = job is not None and job.should_retry and not settings.RQ_INLINE
    attempt = 1
    if job is not None and job.retries_left is not None:
        attempt += job.meta.get("max_retries", 0) - job.retries_left
    result = judge_pending_items(item_ids=item_ids, final_attempt=not retrying, attempt=attempt)
    if result.retry_item_ids:
        raise JudgeRetryError(
            f"{len(result.retry_item_ids)} judge call(s) failed transiently; "
            f"retrying items {result.retry_item_ids[:20]}"
        )
    return {"recorded": result.recorded, "skipped": result.skipped}


def judge_requeue_stuck_job() -> dict[str, int]:
    """Re-enqueue items stuck in pending_judge (run by the RQ cron scheduler)."""
    result = judge_requeue_stuck()
    return {"items": result.items, "jobs": result.jobs}
