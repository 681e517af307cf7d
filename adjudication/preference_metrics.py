"""Agreement on preferences: Cohen's kappa per pair of reviewers, Fleiss' kappa per project.

A preference is a nominal rating of a comparison: the candidate chosen as best
(named by its submitted position, the same for every reviewer whatever order
each was shown), a tie, or all bad. Ties and all bad are categories of their
own. The ratings are the trusted preferences (quarantined ones no longer
count) on real comparisons (controls aside) written in the period; a reviewer
rates an item once (their first preference on it).

Per pair of reviewers: Cohen's kappa (``reviews.stats.cohen_kappa``, the
platform's one) over the items both rated. Per project: Fleiss' kappa
(``reviews.stats.fleiss_kappa``) over the items rated by two or more
reviewers, whoever they were, and Krippendorff's nominal alpha beside it.
Percent agreement is the share of those items on which every rating is equal.
"""

from collections import Counter, defaultdict
from datetime import datetime
from itertools import combinations

from adjudication.rubric_metrics import krippendorff_alpha
from reviews.models import ItemKind, Preference, Project, Review
from reviews.stats import cohen_kappa, fleiss_kappa

Ratings = dict[int, dict[int, str]]
"""item id -> reviewer id -> category."""


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def preference_category(preference: str, winner_position: int | None) -> str:
    """The rating a preference stands for: ``candidate_<n>`` (n from 1), ``tie``, ``all_bad``."""
    if preference == Preference.WINNER and winner_position is not None:
        return f"candidate_{winner_position + 1}"
    return preference


def preference_figures(ratings: Ratings, usernames: dict[int, str]) -> dict[str, object]:
    """The figures from ``ratings`` (item -> reviewer -> category); see the module doc."""
    rated = [by_reviewer for by_reviewer in ratings.values() if len(by_reviewer) >= 2]
    agreed = sum(1 for by_reviewer in rated if len(set(by_reviewer.values())) == 1)
    categories = sorted({c for by_reviewer in ratings.values() for c in by_reviewer.values()})
    codes = {category: float(code) for code, category in enumerate(categories)}
    alpha = krippendorff_alpha(
        units={
            item: {reviewer: codes[c] for reviewer, c in by_reviewer.items()}
            for item, by_reviewer in ratings.items()
        },
        level="nominal",
        value_domain=sorted(codes.values()),
    )
    by_pair: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    for by_reviewer in rated:
        for low, high in combinations(sorted(by_reviewer), 2):
            by_pair[(low, high)].append((by_reviewer[low], by_reviewer[high]))
    pairs = [
        {
            "reviewer_a": usernames.get(low, str(low)),
            "reviewer_b": usernames.get(high, str(high)),
            "items": len(rows),
            "percent_agreement": _percent(sum(1 for a, b in rows if a == b), len(rows)),
            "kappa": _round(cohen_kappa(rows)),
        }
        for (low, high), rows in sorted(by_pair.items(), key=lambda e: (-len(e[1]), e[0]))
    ]
    return {
        "summary": {
            "items": len(rated),
            "ratings": sum(len(by_reviewer) for by_reviewer in rated),
            "reviewers": len({r for by_reviewer in rated for r in by_reviewer}),
            "percent_agreement": _percent(agreed, len(rated)),
            "kappa": _round(fleiss_kappa(Counter(by_reviewer.values()) for by_reviewer in rated)),
            "alpha": _round(alpha),
            "categories": dict(sorted(Counter(c for r in rated for c in r.values()).items())),
        },
        "pairs": pairs,
    }


def preference_ratings(*, project: Project, start: datetime, end: datetime) -> Ratings:
    """The preferences given in ``project`` in [start, end) as item -> reviewer ->
    category (see the module doc); one query."""
    rows = (
        Review.objects.trusted()
        .filter(
            item__project=project,
            item__kind=ItemKind.COMPARISON,
            item__is_control=False,
            created_at__gte=start,
            created_at__lt=end,
        )
        .exclude(preference="")
        .order_by("created_at", "id")
        .values_list("item_id", "reviewer_id", "preference", "winner__position")
    )
    ratings: Ratings = defaultdict(dict)
    for item_id, reviewer_id, preference, position in rows:
        ratings[item_id].setdefault(reviewer_id, preference_category(preference, position))
    return ratings


def raters(ratings: Ratings) -> set[int]:
    """The reviewers who gave the ``ratings``."""
    return {reviewer for by_reviewer in ratings.values() for reviewer in by_reviewer}
