"""RQ jobs of the judge. Thin: they take ids, call a service, report counts."""

from reviews.judge.services import judge_pending_items, judge_requeue_stuck
from reviews.services.judge_queue import judge_retry_enqueue


def judge_items_job(item_ids: list[int], attempt: int = 1) -> dict[str, int]:
    """Judge and route the listed items that are still pending_judge (attempt ``attempt``).

    Items whose calls failed transiently while the project's ``max_retries``
    allows another attempt stay pending, and this worker schedules attempt
    ``attempt + 1`` after the backoff; on the last attempt (or inline, without
    Redis) they are recorded as judge errors and go to a human.
    """
    result = judge_pending_items(item_ids=item_ids, final_attempt=None, attempt=attempt)
    retried = judge_retry_enqueue(item_ids=result.retry_item_ids, attempt=attempt + 1)
    return {
        "recorded": result.recorded,
        "skipped": result.skipped,
        "retry_items": len(result.retry_item_ids),
        "retry_jobs": retried,
    }


def judge_requeue_stuck_job() -> dict[str, int]:
    """Re-enqueue items in pending_judge that no job holds (run by the RQ cron scheduler)."""
    result = judge_requeue_stuck()
    return {"items": result.items, "jobs": result.jobs}
