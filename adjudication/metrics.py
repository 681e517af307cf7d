"""Agreement metrics: percent agreement, Cohen's kappa, overturn rates, time per item.

Cohen's kappa is the platform's one implementation, ``reviews.stats.cohen_kappa``
(undefined, so null, when every rating falls in one verdict). The pure
``agreement_summary`` takes plain values and is tested against hand-computed
tables; ``project_agreement`` loads a project's reviews for a period in a fixed
number of queries and feeds them through.
"""

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection

from adjudication.agreement import outputs_equal, reviews_agree
from adjudication.models import AdjudicationCase, CaseStatus, Upheld
from adjudication.preference_metrics import preference_figures, preference_ratings, raters
from adjudication.rubric_metrics import rubric_agreement
from reviews.models import ItemKind, Project, Review, ReviewItem, Verdict
from reviews.quality.selectors import control_accuracy
from reviews.stats import cohen_kappa

VERDICTS: tuple[str, ...] = tuple(Verdict.values)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


@dataclass(frozen=True)
class Pair:
    """The first two reviews of one item, ``a`` the earlier; ``agree`` per the settle rule."""

    reviewer_a: int
    verdict_a: str
    seconds_a: float
    reviewer_b: int
    verdict_b: str
    seconds_b: float
    agree: bool


@dataclass
class _Tally:
    items: int = 0
    agreed: int = 0
    verdict_pairs: list[tuple[str, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, pair: Pair, first: str, second: str) -> None:
        self.items += 1
        self.agreed += pair.agree
        self.verdict_pairs.append((first, second))
        self.seconds.append(pair.seconds_a + pair.seconds_b)

    def as_dict(self) -> dict:
        return {
            "items": self.items,
            "percent_agreement": _percent(self.agreed, self.items),
            "kappa": _round(cohen_kappa(self.verdict_pairs)),
            "median_seconds_per_item": _median(self.seconds),
        }


def agreement_summary(
    *,
    pairs: list[Pair],
    reviews_in_period: list[tuple[int, int, float]],
    decided_cases: list[dict],
    usernames: dict[int, str],
) -> dict:
    """The agreement figures of one project and period from already-loaded rows.

    Project kappa treats "first review" and "second review" as the two raters;
    pair kappa treats the two reviewers (lower id first) as the raters.
    ``reviews_in_period`` holds (item id, reviewer id, seconds) of every review
    written in the period; ``decided_cases`` rows have ``reviewer_a``, ``reviewer_b``, ``agrees_a``,
    ``agrees_b`` (whether the senior's decision matched that review).
    """
    project = _Tally()
    by_pair: dict[tuple[int, int], _Tally] = defaultdict(_Tally)
    confusion = {a: dict.fromkeys(VERDICTS, 0) for a in VERDICTS}
    paired_items: Counter[int] = Counter()
    paired_agreed: Counter[int] = Counter()
    for pair in pairs:
        project.add(pair, pair.verdict_a, pair.verdict_b)
        confusion.setdefault(pair.verdict_a, {}).setdefault(pair.verdict_b, 0)
        confusion[pair.verdict_a][pair.verdict_b] += 1
        if pair.reviewer_a < pair.reviewer_b:
            key, low_verdict, high_verdict = (
                (pair.reviewer_a, pair.reviewer_b),
                pair.verdict_a,
                pair.verdict_b,
            )
        else:
            key, low_verdict, high_verdict = (
                (pair.reviewer_b, pair.reviewer_a),
                pair.verdict_b,
                pair.verdict_a,
            )
        by_pair[key].add(pair, low_verdict, high_verdict)
        for reviewer in key:
            paired_items[reviewer] += 1
            paired_agreed[reviewer] += pair.agree

    adjudicated: Counter[int] = Counter()
    overturned: Counter[int] = Counter()
    for case in decided_cases:
        for side in ("a", "b"):
            reviewer = case[f"reviewer_{side}"]
            if reviewer is None:
                continue
            adjudicated[reviewer] += 1
            overturned[reviewer] += not case[f"agrees_{side}"]

    seconds_by_reviewer: dict[int, list[float]] = defaultdict(list)
    item_seconds: dict[int, float] = defaultdict(float)
    for item_id, reviewer_id, seconds in reviews_in_period:
        seconds_by_reviewer[reviewer_id].append(seconds)
        item_seconds[item_id] += seconds

    reviewer_ids = set(seconds_by_reviewer) | set(paired_items) | set(adjudicated)
    reviewers = [
        {
            "reviewer": usernames.get(rid, str(rid)),
            "reviewer_id": rid,
            "reviews": len(seconds_by_reviewer[rid]),
            "paired_items": paired_items[rid],
            "percent_agreement": _percent(paired_agreed[rid], paired_items[rid]),
            "adjudicated": adjudicated[rid],
            "overturned": overturned[rid],
            "overturned_percent": _percent(overturned[rid], adjudicated[rid]),
            "median_seconds_per_item": _median(seconds_by_reviewer[rid]),
        }
        for rid in sorted(reviewer_ids, key=lambda rid: usernames.get(rid, str(rid)))
    ]
    pair_rows = [
        {
            "reviewer_a": usernames.get(low, str(low)),
            "reviewer_b": usernames.get(high, str(high)),
            **tally.as_dict(),
        }
        for (low, high), tally in sorted(
            by_pair.items(), key=lambda entry: (-entry[1].items, entry[0])
        )
    ]
    summary = project.as_dict()
    summary["median_seconds_per_item"] = _median(list(item_seconds.values()))
    summary["reviewed_items"] = len(item_seconds)
    summary["adjudicated"] = len(decided_cases)
    summary["verdict_agreement_percent"] = _percent(
        sum(1 for a, b in project.verdict_pairs if a == b), project.items
    )
    return {"summary": summary, "confusion": confusion, "pairs": pair_rows, "reviewers": reviewers}


_PAIRS_SQL = """
SELECT p.reviewer_id, p.verdict, p.seconds_spent, p.reviewer_b, p.verdict_b, p.seconds_b,
       CASE WHEN p.verdict = %s AND p.verdict_b = %s THEN p.corrected_output END,
       CASE WHEN p.verdict = %s AND p.verdict_b = %s THEN p.corrected_b END,
       CASE WHEN p.verdict = %s AND p.verdict_b = %s THEN i.output END
FROM (
    SELECT r.item_id, r.reviewer_id, r.verdict, r.seconds_spent, r.corrected_output,
           ROW_NUMBER() OVER w AS n,
           LEAD(r.reviewer_id) OVER w AS reviewer_b,
           LEAD(r.verdict) OVER w AS verdict_b,
           LEAD(r.seconds_spent) OVER w AS seconds_b,
           LEAD(r.corrected_output) OVER w AS corrected_b,
           LEAD(r.created_at) OVER w AS created_b
    FROM {review} r
    WHERE r.item_id IN (
        SELECT r2.item_id FROM {review} r2 JOIN {item} i2 ON i2.id = r2.item_id
        WHERE i2.project_id = %s AND NOT i2.is_control AND i2.kind = %s
          AND r2.created_at >= %s AND r2.created_at < %s
    )
    WINDOW w AS (PARTITION BY r.item_id ORDER BY r.created_at, r.id)
) p
JOIN {item} i ON i.id = p.item_id
WHERE p.n = 1 AND p.reviewer_b IS NOT NULL AND p.reviewer_id <> p.reviewer_b
  AND p.created_b >= %s AND p.created_b < %s
"""


def _load_pairs(project: Project, start: datetime, end: datetime) -> list[Pair]:
    """First two reviews of each single-output item whose second review falls in [start, end).

    One query: a window over each item's reviews puts the second beside the
    first; texts travel only for pairs of corrections, where agreement
    depends on them (and on whether the original output is JSON).
    """
    adapt = connection.ops.adapt_datetimefield_value
    sql = _PAIRS_SQL.format(review=Review._meta.db_table, item=ReviewItem._meta.db_table)
    correct = [Verdict.CORRECT.value] * 6
    # Verdict agreement is of single outputs: two preferences for different winners are
    # both "approve" (their own agreement figures are the preference report's).
    params = [
        *correct,
        project.pk,
        ItemKind.SINGLE.value,
        adapt(start),
        adapt(end),
        adapt(start),
        adapt(end),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        Pair(
            reviewer_a=ra,
            verdict_a=va,
            seconds_a=sa,
            reviewer_b=rb,
            verdict_b=vb,
            seconds_b=sb,
            agree=va == vb
            and (va != Verdict.CORRECT or outputs_equal(original=orig, left=oa, right=ob)),
        )
        for ra, va, sa, rb, vb, sb, oa, ob, orig in rows
    ]


def _decided_cases(project: Project, start, end) -> list[dict]:
    cases = (
        AdjudicationCase.objects.filter(
            project=project,
            status=CaseStatus.DECIDED,
            decided_at__gte=start,
            decided_at__lt=end,
        )
        .select_related("item", "review_a", "review_b")
        .only(
            "upheld",
            "final_verdict",
            "final_output",
            "item__output",
            "item__kind",
            "item__final_preference",
            "item__final_candidate_id",
            "review_a__reviewer_id",
            "review_a__verdict",
            "review_a__corrected_output",
            "review_a__preference",
            "review_a__winner_id",
            "review_b__reviewer_id",
            "review_b__verdict",
            "review_b__corrected_output",
            "review_b__preference",
            "review_b__winner_id",
        )
    )
    rows = []
    for case in cases:
        row = {}
        for side, review in (("a", case.review_a), ("b", case.review_b)):
            row[f"reviewer_{side}"] = review.reviewer_id if review else None
            if review is None:
                row[f"agrees_{side}"] = True
            elif case.upheld in (Upheld.A, Upheld.B):
                row[f"agrees_{side}"] = case.upheld == side
            elif case.item.kind == ItemKind.COMPARISON:
                # An own preference: the same choice, winner and correction upholds it.
                item = case.item
                row[f"agrees_{side}"] = (
                    review.preference == item.final_preference
                    and review.winner_id == item.final_candidate_id
                    and review.verdict == case.final_verdict
                    and (review.corrected_output or "")
                    == (case.final_output if review.verdict == Verdict.CORRECT else "")
                )
            else:
                # The senior wrote their own decision: a review that says the
                # same thing was not overturned.
                row[f"agrees_{side}"] = reviews_agree(
                    original=case.item.output,
                    verdict_a=review.verdict,
                    output_a=review.corrected_output,
                    verdict_b=case.final_verdict,
                    output_b=case.final_output,
                )
        rows.append(row)
    return rows


def project_agreement(*, project: Project, start: datetime, end: datetime) -> dict:
    """Agreement figures of ``project`` for reviews and decisions in [start, end).

    A fixed number of queries whatever the volume: the pairs, the period's
    review times, the decided cases, the preferences on comparisons
    (``adjudication.preference_metrics``), the reviewers' names, and the
    rubric's criteria and scores (``adjudication.rubric_metrics``).
    """
    pairs = _load_pairs(project, start, end)
    reviews_in_period = list(
        Review.objects.filter(
            item__project=project, item__is_control=False, created_at__gte=start, created_at__lt=end
        ).values_list("item_id", "reviewer_id", "seconds_spent")
    )
    decided = _decided_cases(project, start, end)
    preferences = preference_ratings(project=project, start=start, end=end)
    reviewer_ids = {row[1] for row in reviews_in_period} | raters(preferences)
    reviewer_ids.update(p.reviewer_a for p in pairs)
    reviewer_ids.update(p.reviewer_b for p in pairs)
    for case in decided:
        reviewer_ids.update(r for r in (case["reviewer_a"], case["reviewer_b"]) if r is not None)
    usernames = _usernames(reviewer_ids)
    figures = agreement_summary(
        pairs=pairs,
        reviews_in_period=reviews_in_period,
        decided_cases=decided,
        usernames=usernames,
    )
    # Control accuracy beside the agreement figures (reviews.quality): numbers only.
    accuracy = control_accuracy(project=project, start=start, end=end)
    for row in figures["reviewers"]:
        found = accuracy.get(row["reviewer_id"])
        row["controls"] = found.as_dict() if found else None
    # A reviewer who reviewed only controls in the period still gets their row.
    listed = {row["reviewer_id"] for row in figures["reviewers"]}
    figures["reviewers"].extend(
        {
            "reviewer": found.username,
            "reviewer_id": reviewer_id,
            "reviews": 0,
            "paired_items": 0,
            "percent_agreement": None,
            "adjudicated": 0,
            "overturned": 0,
            "overturned_percent": None,
            "median_seconds_per_item": None,
            "controls": found.as_dict(),
        }
        for reviewer_id, found in accuracy.items()
        if reviewer_id not in listed
    )
    figures["reviewers"].sort(key=lambda row: row["reviewer"])
    return {
        "project": project.slug,
        "period": {"start": start, "end": end},
        **figures,
        "rubric": rubric_agreement(project=project, start=start, end=end),
        "preferences": preference_figures(preferences, usernames),
    }


def _usernames(ids: set[int]) -> dict[int, str]:
    user_model = get_user_model()
    return dict(user_model.objects.filter(pk__in=ids).values_list("pk", user_model.USERNAME_FIELD))
