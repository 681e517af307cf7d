"""RQ jobs of reviewer quality. Thin: they load ids and call a service."""

from django.contrib.auth import get_user_model

from hitlplatform.queues import enqueue_on_commit
from reviews.models import Project
from reviews.quality.evaluate import reviewer_quality_evaluate, reviewers_evaluate_recent

QUALITY_JOB = "reviews.quality.jobs.reviewer_quality_job"


def reviewer_quality_enqueue(*, project_id: int, reviewer_id: int) -> None:
    """Evaluate the reviewer once the current transaction (a control review) commits."""
    enqueue_on_commit("default", QUALITY_JOB, project_id, reviewer_id)


def reviewer_quality_job(project_id: int, reviewer_id: int) -> bool:
    """Evaluate one reviewer in one project; True when a quarantine was made."""
    project = Project.objects.filter(pk=project_id).first()
    reviewer = get_user_model().objects.filter(pk=reviewer_id).first()
    if project is None or reviewer is None:
        return False
    return reviewer_quality_evaluate(project=project, reviewer=reviewer).quarantine is not None


def reviewers_evaluate_job() -> int:
    """Evaluate every reviewer who reviewed in the last day (cron, every 15 minutes)."""
    return reviewers_evaluate_recent()
