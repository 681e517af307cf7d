"""Read paths: who may see what, and the item pages' queries."""

from django.db.models import Prefetch, QuerySet

from reviews.access import Capability, projects_where
from reviews.models import CheckResult, JudgeVerdict, ReviewItem
from reviews.outcomes import audit_reviews_of, decision_steps_of, rubric_reviews_of


def items_visible_to(principal) -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.for_clients()
        .filter(project__in=projects_where(principal, Capability.VIEW))
        .select_related("project")
        .prefetch_related(
            Prefetch("check_results", queryset=CheckResult.objects.order_by("id")),
            Prefetch(
                "judge_verdicts", queryset=JudgeVerdict.objects.order_by("-created_at", "-id")
            ),
        )
    )


def _prefetched(instance, name: str, objects: list) -> None:
    """Fill ``instance``'s reverse relation ``name`` with ``objects``, as a prefetch would."""
    queryset = getattr(instance, name).all()
    queryset._result_cache = objects
    queryset._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


def item_as_inserted(item: ReviewItem, *, check_results: list[CheckResult]) -> ReviewItem:
    """A just-inserted ``item`` holding what ``items_visible_to`` prefetches, without a query.

    Its ``check_results`` are the rows written with it; a new item has no judge
    verdict yet (the judge runs after commit) and, if an audit sample, no audit review.
    """
    _prefetched(item, "check_results", check_results)
    _prefetched(item, "judge_verdicts", [])
    if item.is_audit:
        item.audit_reviews = []
    return item


def items_with_audits(items: list[ReviewItem]) -> list[ReviewItem]:
    """Give each audit sample of ``items`` its ``audit_reviews`` (one query; none without
    audit samples, unlike a prefetch, which queries for every page), and each item decided
    by people its ``decision_steps`` and ``rubric_reviews`` (one query each; none without
    such items)."""
    audits = audit_reviews_of(items)
    steps = decision_steps_of(items)
    scored = rubric_reviews_of(items)
    for item in items:
        if item.is_audit:
            item.audit_reviews = [audits[item.pk]] if item.pk in audits else []
        if item.pk in steps:
            item.decision_steps = steps[item.pk]
        if item.final_verdict:
            item.rubric_reviews = scored.get(item.pk, [])
    return items
