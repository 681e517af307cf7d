"""Agreement metrics: percent agreement, Cohen's kappa, overturn rates, time per item.

The pure functions (``cohen_kappa``, ``agreement_summary``) take plain values and
are tested against hand-computed tables; ``project_agreement`` loads a project's
reviews for a period (two queries plus one per chunk of corrected pairs) and
feeds them through.
"""

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model

from adjudication.agreement import reviews_agree
from adjudication.models import AdjudicationCase, CaseStatus, Upheld
from reviews.models import Project, Review, ReviewItem, Verdict

VERDICTS: tuple[str, ...] = tuple(Verdict.values)
OUTPUT_CHUNK = 500


def cohen_kappa(pairs: Iterable[tuple[str, str]], categories: Sequence[str] = VERDICTS):
    """Cohen's kappa of two raters over ``(rating_1, rating_2)`` pairs.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed share of agreeing
    pairs and p_e = sum over categories of (share of rater 1) x (share of
    rater 2). Degenerate cases, by definition here:

    - no pairs: ``None`` (nothing to measure);
    - p_e = 1, which happens only when both raters put every item in the same
      single category (so p_o = 1 too): ``1.0`` — perfect agreement, although
      the formula itself is 0/0.
    """
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    labels = set(categories) | set(first) | set(second)
    p_o = sum(1 for a, b in pairs if a == b) / n
    p_e = sum((first[c] / n) * (second[c] / n) for c in labels)
    if p_e >= 1.0:
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


@dataclass(frozen=True)
class ReviewRow:
    """One review as the metrics see it."""

    item_id: int
    reviewer_id: int
    verdict: str
    seconds: float
    created_at: datetime
    corrected_output: str | None = None


@dataclass(frozen=True)
class Pair:
    """The first two reviews of one item, ``a`` the earlier; ``agree`` per the reconcile rule."""

    item_id: int
    a: ReviewRow
    b: ReviewRow
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
        self.seconds.append(pair.a.seconds + pair.b.seconds)

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
    reviews_in_period: list[ReviewRow],
    item_seconds: dict[int, float],
    decided_cases: list[dict],
    usernames: dict[int, str],
) -> dict:
    """The agreement figures of one project and period from already-loaded rows.

    Project kappa treats "first review" and "second review" as the two raters;
    pair kappa treats the two reviewers (lower id first) as the raters.
    ``decided_cases`` rows have ``reviewer_a``, ``reviewer_b``, ``agrees_a``,
    ``agrees_b`` (whether the senior's decision matched that review).
    """
    project = _Tally()
    by_pair: dict[tuple[int, int], _Tally] = defaultdict(_Tally)
    confusion = {a: dict.fromkeys(VERDICTS, 0) for a in VERDICTS}
    paired_items: Counter[int] = Counter()
    paired_agreed: Counter[int] = Counter()
    for pair in pairs:
        project.add(pair, pair.a.verdict, pair.b.verdict)
        confusion.setdefault(pair.a.verdict, {}).setdefault(pair.b.verdict, 0)
        confusion[pair.a.verdict][pair.b.verdict] += 1
        low, high = sorted((pair.a, pair.b), key=lambda row: row.reviewer_id)
        by_pair[(low.reviewer_id, high.reviewer_id)].add(pair, low.verdict, high.verdict)
        for row in (pair.a, pair.b):
            paired_items[row.reviewer_id] += 1
            paired_agreed[row.reviewer_id] += pair.agree

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
    for row in reviews_in_period:
        seconds_by_reviewer[row.reviewer_id].append(row.seconds)

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


def _load_pairs(rows_by_item: dict[int, list[ReviewRow]], start, end) -> list[Pair]:
    """First two reviews of each item whose second review falls in [start, end)."""
    firsts: list[tuple[int, ReviewRow, ReviewRow]] = []
    for item_id, rows in rows_by_item.items():
        if len(rows) < 2:
            continue
        a, b = sorted(rows, key=lambda row: row.created_at)[:2]
        if start <= b.created_at < end and a.reviewer_id != b.reviewer_id:
            firsts.append((item_id, a, b))
    # Whether two corrections agree depends on the original output (JSON or
    # text); load it only for those pairs, in chunks.
    both_correct = [i for i, a, b in firsts if a.verdict == b.verdict == Verdict.CORRECT]
    originals: dict[int, str] = {}
    for offset in range(0, len(both_correct), OUTPUT_CHUNK):
        chunk = both_correct[offset : offset + OUTPUT_CHUNK]
        originals.update(ReviewItem.objects.filter(pk__in=chunk).values_list("pk", "output"))
    return [
        Pair(
            item_id=item_id,
            a=a,
            b=b,
            agree=reviews_agree(
                original=originals.get(item_id, ""),
                verdict_a=a.verdict,
                output_a=a.corrected_output,
                verdict_b=b.verdict,
                output_b=b.corrected_output,
            ),
        )
        for item_id, a, b in firsts
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
            "review_a__reviewer_id",
            "review_a__verdict",
            "review_a__corrected_output",
            "review_b__reviewer_id",
            "review_b__verdict",
            "review_b__corrected_output",
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
    """Agreement figures of ``project`` for reviews and decisions in [start, end)."""
    items_in_period = Review.objects.filter(
        item__project=project, created_at__gte=start, created_at__lt=end
    ).values("item_id")
    rows_by_item: dict[int, list[ReviewRow]] = defaultdict(list)
    reviewer_ids: set[int] = set()
    for values in Review.objects.filter(item_id__in=items_in_period).values_list(
        "item_id", "reviewer_id", "verdict", "seconds_spent", "created_at", "corrected_output"
    ):
        row = ReviewRow(*values)
        rows_by_item[row.item_id].append(row)
        reviewer_ids.add(row.reviewer_id)
    reviews_in_period = [
        row for rows in rows_by_item.values() for row in rows if start <= row.created_at < end
    ]
    item_seconds: dict[int, float] = defaultdict(float)
    for row in reviews_in_period:
        item_seconds[row.item_id] += row.seconds
    decided = _decided_cases(project, start, end)
    for case in decided:
        reviewer_ids.update(r for r in (case["reviewer_a"], case["reviewer_b"]) if r is not None)
    usernames = _usernames(reviewer_ids)
    figures = agreement_summary(
        pairs=_load_pairs(rows_by_item, start, end),
        reviews_in_period=reviews_in_period,
        item_seconds=dict(item_seconds),
        decided_cases=decided,
        usernames=usernames,
    )
    return {
        "project": project.slug,
        "period": {"start": start, "end": end},
        **figures,
    }


def _usernames(ids: set[int]) -> dict[int, str]:
    user_model = get_user_model()
    return dict(user_model.objects.filter(pk__in=ids).values_list("pk", user_model.USERNAME_FIELD))
