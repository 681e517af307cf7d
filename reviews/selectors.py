"""Read paths: who may see what, and the item pages' queries."""

from django.db.models import Prefetch, QuerySet

from reviews.models import CheckResult, JudgeVerdict, MemberRole, Project, ReviewItem
from reviews.principals import ApiClient


def projects_visible_to(principal) -> QuerySet[Project]:
    """The projects an API key, a superuser or a member may see."""
    if isinstance(principal, ApiClient):
        return Project.objects.filter(pk=principal.key.project_id)
    if principal is None or not principal.is_authenticated:
        return Project.objects.none()
    if principal.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=principal).distinct()


def projects_administered_by(principal) -> QuerySet[Project]:
    """Projects the principal may submit to and configure."""
    if isinstance(principal, ApiClient):
        return Project.objects.filter(pk=principal.key.project_id)
    if principal is None or not principal.is_authenticated:
        return Project.objects.none()
    if principal.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(
        memberships__user=principal, memberships__role=MemberRole.ADMIN
    ).distinct()


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
