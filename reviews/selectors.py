"""Read paths: who may see what, and the item pages' queries."""

from django.db.models import Prefetch, QuerySet

from reviews.access import Capability, projects_where
from reviews.models import CheckResult, JudgeVerdict, ReviewItem


def items_visible_to(principal) -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.filter(project__in=projects_where(principal, Capability.VIEW))
        .select_related("project")
        .prefetch_related(
            Prefetch("check_results", queryset=CheckResult.objects.order_by("id")),
            Prefetch(
                "judge_verdicts", queryset=JudgeVerdict.objects.order_by("-created_at", "-id")
            ),
        )
    )
