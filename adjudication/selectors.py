"""Adjudication reads: who may adjudicate, the senior queue, the case page."""

from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Subquery

from adjudication.models import AdjudicationCase, CaseClaim, ClaimState
from reviews.access import Capability, may, projects_where
from reviews.models import CheckResult, Project


def senior_may_adjudicate(*, user, case: AdjudicationCase) -> bool:
    """A senior of the case's project who wrote neither of its reviews."""
    reviewers = {r.reviewer_id for r in (case.review_a, case.review_b) if r is not None}
    if user.pk in reviewers:
        return False
    return may(user, Capability.ADJUDICATE, case.project_id)


def case_queue_for(user, *, project: Project | None = None) -> QuerySet[AdjudicationCase]:
    """Open cases ``user`` may decide, in queue order; narrow rows, for paging."""
    cases = (
        AdjudicationCase.objects.open()
        .filter(project__in=projects_where(user, Capability.ADJUDICATE))
        .not_reviewed_by(user)
        .in_queue_order()
    )
    if project is not None:
        cases = cases.filter(project=project)
    return cases


def cases_for_queue_page(*, ids: list[int], now) -> list[AdjudicationCase]:
    """One queue page's cases, in the order of ``ids``, with who holds a live claim.

    Loaded by primary key after paging, so the joins touch one page of rows,
    never the whole backlog.
    """
    live = CaseClaim.objects.filter(
        case=OuterRef("pk"), state=ClaimState.ACTIVE, lease_expires_at__gt=now
    )
    rows = (
        AdjudicationCase.objects.filter(pk__in=ids)
        .annotate(
            claimed=Exists(live),
            claimed_by=Subquery(live.values("senior__username")[:1]),
        )
        .select_related("project", "item", "review_a__reviewer", "review_b__reviewer")
        .defer("item__prompt", "item__output", "item__messages", "item__context", "item__metadata")
    )
    by_id = {case.pk: case for case in rows}
    return [by_id[pk] for pk in ids if pk in by_id]


def case_for_page(*, case_id: int) -> AdjudicationCase:
    """One case with its item, reviews (and the steps each marked wrong), checks and
    people, for the case page."""
    return (
        AdjudicationCase.objects.select_related(
            "project",
            "item",
            "review_a__reviewer",
            "review_b__reviewer",
            "decided_by",
            "opened_by",
        )
        .prefetch_related(
            Prefetch("item__check_results", queryset=CheckResult.objects.order_by("id")),
            "review_a__step_verdicts",
            "review_b__step_verdicts",
        )
        .get(pk=case_id)
    )


def live_claim(*, case: AdjudicationCase, now) -> CaseClaim | None:
    return (
        CaseClaim.objects.select_related("senior")
        .filter(case=case, state=ClaimState.ACTIVE, lease_expires_at__gt=now)
        .first()
    )


def cases_of_item(*, item_id: int) -> QuerySet[AdjudicationCase]:
    return AdjudicationCase.objects.filter(item_id=item_id).select_related("decided_by")
