"""Evaluating a reviewer: signals, standing, and the control-accuracy quarantine rule."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from reviews.models import Project, Review, ReviewerStanding, ReviewItem
from reviews.quality.quarantine import QuarantineOutcome, quarantine_create, quarantine_rule_start
from reviews.quality.selectors import ControlAccuracy, control_accuracy, reviewer_signals
from reviews.services.routing import audit_draw


@dataclass(frozen=True)
class Evaluation:
    standing: ReviewerStanding
    accuracy: ControlAccuracy | None
    quarantine: QuarantineOutcome | None


def quarantine_rule_due(*, project: Project, accuracy: ControlAccuracy | None) -> bool:
    """The rule: enough control reviews, and the upper 95% Wilson bound under the floor.

    Quarantine withdraws released decisions, so it needs confidence that the
    reviewer is below the floor, not a bad afternoon.
    """
    if not project.quarantine_by_rule or accuracy is None:
        return False
    if accuracy.total < project.control_min_reviews:
        return False
    return accuracy.interval[1] < project.control_accuracy_floor


@transaction.atomic
def reviewer_quality_evaluate(*, project: Project, reviewer, now=None) -> Evaluation:
    """Evaluate ``reviewer`` in ``project`` over the look-back and act on it.

    Stores the standing (rushed-review signals over the project's
    ``quarantine_lookback_days``; ``flagged`` drives the second blind review)
    and, when the rule is on and due, quarantines the reviewer's decisions
    since the look-back began (or since their last quarantine ended).
    Idempotent: a second run finds the period quarantined already.
    """
    now = now or timezone.now()
    start = now - timedelta(days=project.quarantine_lookback_days)
    signals = reviewer_signals(project=project, reviewer=reviewer, start=start, end=now)
    standing, _created = ReviewerStanding.objects.update_or_create(
        project=project,
        reviewer=reviewer,
        defaults={"flagged": signals.flagged, "signals": signals.counts(), "evaluated_at": now},
    )
    rule_start = quarantine_rule_start(project=project, reviewer=reviewer, now=now)
    accuracy = control_accuracy(
        project=project, start=rule_start, end=now, reviewer_ids=[reviewer.pk]
    ).get(reviewer.pk)
    outcome = None
    if quarantine_rule_due(project=project, accuracy=accuracy):
        low, high = accuracy.interval
        reason = (
            f"Control accuracy {accuracy.correct}/{accuracy.total} "
            f"({accuracy.accuracy:.0%}, 95% CI {low:.0%}-{high:.0%}) is below the project's "
            f"floor of {project.control_accuracy_floor:.0%}"
        )
        outcome = quarantine_create(
            project=project, reviewer=reviewer, start=rule_start, end=now, reason=reason
        )
    return Evaluation(standing=standing, accuracy=accuracy, quarantine=outcome)


def reviewers_evaluate_recent(*, now=None) -> int:
    """Evaluate every (project, reviewer) with a review in the last day; returns how many."""
    now = now or timezone.now()
    pairs = list(
        Review.objects.filter(created_at__gte=now - timedelta(days=1))
        .values_list("item__project_id", "reviewer_id")
        .distinct()
    )
    projects = {p.pk: p for p in Project.objects.filter(pk__in={pid for pid, _ in pairs})}
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in={uid for _, uid in pairs})}
    for project_id, reviewer_id in pairs:
        reviewer_quality_evaluate(
            project=projects[project_id], reviewer=users[reviewer_id], now=now
        )
    return len(pairs)


def second_review_due(*, project: Project, reviewer, item: ReviewItem) -> bool:
    """Whether ``reviewer``'s decision on ``item`` goes to a second blind review.

    When their standing in the project is flagged (rushed-review signals),
    ``second_review_rate`` of their decisions do, drawn per item from the
    project's salt (the same item always draws the same). Only in projects
    that ask one review per item (with two, every decision has a second blind
    review already); audit samples and controls never do.
    """
    if project.second_review_rate <= 0 or project.reviews_required != 1:
        return False
    if item.is_audit or item.is_control:
        return False
    flagged = ReviewerStanding.objects.filter(
        project=project, reviewer=reviewer, flagged=True
    ).exists()
    if not flagged:
        return False
    draw = audit_draw(project.audit_salt, f"second-review:{item.external_id}")
    return draw < project.second_review_rate
