"""Reviewer quality's cron entry (``hitlplatform.schedule``): every reviewer who
reviewed in the last day is evaluated every fifteen minutes (signals, standing,
the quarantine rule); control reviews also trigger their reviewer's evaluation."""

from rq import cron

from reviews.quality.jobs import reviewers_evaluate_job


def schedule_register() -> None:
    cron.register(reviewers_evaluate_job, queue_name="default", interval=15 * 60)
