"""Read paths: who may see what, and the item pages' queries."""

from django.db.models import Prefetch, QuerySet

from reviews.access import Capability, projects_where
from reviews.models import CheckResult, JudgeVerdict, Project, ReviewItem


def projects_visible_to(principal) -> QuerySet[Project]:
    """The projects whose items an API key, a superuser or a member may see."""
    return projects_where(principal, Capability.VIEW)


def projects_administered_by(principal) -> QuerySet[Project]:
    """Projects the principal may submit to: its own (an API key), or those it administers."""
    return projects_where(principal, Capability.SUBMIT)


def items_visible_to(principal) -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.filter(project__in=projects_visible_to(principal))
        .select_related("project")
        .prefetch_related(
            Prefetch("check_results", queryset=CheckResult.objects.order_by("id")),
            Prefetch(
                "judge_verdicts", queryset=JudgeVerdict.objects.order_by("-created_at", "-id")
            ),
        )
    )
