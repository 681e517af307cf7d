"""Reads of reviewer quality: control accuracy and rushed-review signals.

Control accuracy is the share of a reviewer's control reviews that gave the
known answer, with its 95% Wilson score interval (the dashboard's
``wilson_interval``, one formula for the platform). Signals compare each
decision with the reviewer's own and the project's usual time for outputs of
similar length, find long runs of one verdict, and approvals of items the
judge or a check flagged.
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.db.models.functions import Length

from reviews.models import Project, Quarantine, Review, ReviewerStanding, Verdict
from reviews.monitoring.services import wilson_interval
from reviews.services.routing import FLAG_REASON_PREFIXES

# A decision is "fast" under this share of both the project's and the
# reviewer's own median time for outputs of its length band.
FAST_SHARE = 0.25
# Medians need this many decisions in a band to be a usual time at all.
MEDIAN_MIN = 5
# Output length bands (characters): similar reading effort.
LENGTH_BANDS = (200, 500, 1000, 2000, 5000)
# A run of this many identical verdicts in a row is a signal.
RUN_MIN = 25
# Flagged: at least this many fast decisions and this share of all of them ...
FAST_MIN, FAST_MIN_SHARE = 5, 0.10
# ... or this many approvals of flagged items.
FLAGGED_APPROVALS_MIN = 3
# Items listed per signal on the reviewer page.
ITEMS_SHOWN = 50

SIGNAL_FAST = "fast"
SIGNAL_RUN = "identical_run"
SIGNAL_FLAGGED_APPROVAL = "approved_flagged"
SIGNAL_LABELS = {
    SIGNAL_FAST: "Far faster than their own and the project's usual time",
    SIGNAL_RUN: f"Runs of {RUN_MIN} or more identical verdicts",
    SIGNAL_FLAGGED_APPROVAL: "Approvals of items the judge or a check flagged",
}


@dataclass(frozen=True)
class ControlAccuracy:
    reviewer_id: int
    username: str
    total: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.total)

    def as_dict(self) -> dict:
        low, high = self.interval
        return {
            "reviewer": self.username,
            "controls": self.total,
            "correct": self.correct,
            "accuracy": None if self.accuracy is None else round(self.accuracy, 4),
            "wilson_low": round(low, 4) if self.total else None,
            "wilson_high": round(high, 4) if self.total else None,
        }


def control_accuracy(
    *, project: Project, start: datetime, end: datetime, reviewer_ids=None
) -> dict[int, ControlAccuracy]:
    """Control accuracy per reviewer over control reviews created in [start, end)."""
    reviews = Review.objects.filter(
        item__project=project, item__is_control=True, created_at__gte=start, created_at__lt=end
    )
    if reviewer_ids is not None:
        reviews = reviews.filter(reviewer_id__in=list(reviewer_ids))
    rows = (
        reviews.values("reviewer_id", "reviewer__username")
        .annotate(total=Count("pk"), correct=Count("pk", filter=Q(control_correct=True)))
        .order_by("reviewer__username")
    )
    return {
        row["reviewer_id"]: ControlAccuracy(
            row["reviewer_id"], row["reviewer__username"], row["total"], row["correct"]
        )
        for row in rows
    }


@dataclass
class SignalItem:
    item_id: int
    external_id: str
    verdict: str
    seconds: float
    created_at: datetime
    note: str = ""


@dataclass
class Signals:
    decisions: int = 0
    median_seconds: float | None = None
    found: dict[str, list[SignalItem]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(items) for name, items in self.found.items()}

    @property
    def flagged(self) -> bool:
        fast = len(self.found.get(SIGNAL_FAST, []))
        return (
            (fast >= FAST_MIN and fast >= FAST_MIN_SHARE * self.decisions)
            or bool(self.found.get(SIGNAL_RUN))
            or len(self.found.get(SIGNAL_FLAGGED_APPROVAL, [])) >= FLAGGED_APPROVALS_MIN
        )


def _band(length: int) -> int:
    return sum(length >= edge for edge in LENGTH_BANDS)


def _medians(rows) -> dict[int, float]:
    by_band: dict[int, list[float]] = defaultdict(list)
    for length, seconds in rows:
        by_band[_band(length)].append(seconds)
    return {
        band: statistics.median(values)
        for band, values in by_band.items()
        if len(values) >= MEDIAN_MIN
    }


def reviewer_signals(*, project: Project, reviewer, start: datetime, end: datetime) -> Signals:
    """The rushed-review signals of ``reviewer`` in ``project`` over [start, end).

    Audit reviews count as decisions; controls do not (the page lists the
    items behind each signal, and which items are controls stays with project
    admins). Each signal lists its decisions, oldest first.
    """
    period = Q(
        item__project=project, item__is_control=False, created_at__gte=start, created_at__lt=end
    )
    project_rows = (
        Review.objects.filter(period)
        .annotate(length=Length("item__output"))
        .values_list("length", "seconds_spent")
    )
    project_medians = _medians(project_rows)
    own = list(
        Review.objects.filter(period, reviewer=reviewer)
        .annotate(length=Length("item__output"))
        .order_by("created_at", "id")
        .values_list(
            "item_id",
            "item__external_id",
            "verdict",
            "seconds_spent",
            "created_at",
            "length",
            "item__review_reasons",
        )
    )
    own_medians = _medians((row[5], row[3]) for row in own)
    signals = Signals(decisions=len(own))
    if own:
        signals.median_seconds = statistics.median(row[3] for row in own)
    fast, flagged, runs = [], [], []
    run: list[SignalItem] = []
    for item_id, external_id, verdict, seconds, created_at, length, reasons in own:
        entry = SignalItem(item_id, external_id, verdict, seconds, created_at)
        band = _band(length)
        usual = [m for m in (project_medians.get(band), own_medians.get(band)) if m is not None]
        if len(usual) == 2 and seconds < FAST_SHARE * min(usual):
            entry.note = (
                f"{seconds:.0f} s; usually {usual[0]:.0f} s (project), {usual[1]:.0f} s (own)"
            )
            fast.append(entry)
        if verdict == Verdict.APPROVE and any(
            str(reason).startswith(FLAG_REASON_PREFIXES) for reason in reasons or []
        ):
            flagged.append(
                SignalItem(item_id, external_id, verdict, seconds, created_at, ", ".join(reasons))
            )
        if run and run[-1].verdict != verdict:
            if len(run) >= RUN_MIN:
                runs.extend(run)
            run = []
        run.append(SignalItem(item_id, external_id, verdict, seconds, created_at))
    if len(run) >= RUN_MIN:
        runs.extend(run)
    signals.found = {SIGNAL_FAST: fast, SIGNAL_RUN: runs, SIGNAL_FLAGGED_APPROVAL: flagged}
    return signals


def project_reviewers(*, project: Project, start: datetime, end: datetime):
    """The users who reviewed in ``project`` in [start, end), by username."""
    ids = (
        Review.objects.filter(item__project=project, created_at__gte=start, created_at__lt=end)
        .values("reviewer_id")
        .distinct()
    )
    return get_user_model().objects.filter(pk__in=ids).order_by("username")


def quarantines_of(*, project: Project, reviewer=None):
    found = Quarantine.objects.filter(project=project).select_related("reviewer", "created_by")
    if reviewer is not None:
        found = found.filter(reviewer=reviewer)
    return found


@dataclass(frozen=True)
class ReviewerRow:
    reviewer_id: int
    username: str
    decisions: int
    accuracy: ControlAccuracy | None
    flagged: bool
    signals: dict
    quarantines: int


def reviewers_overview(*, project: Project, start: datetime, end: datetime) -> list[ReviewerRow]:
    """One row per reviewer of ``project`` in [start, end): decisions (controls aside),
    control accuracy, the latest standing's signal counts, and their quarantines.

    A fixed number of queries whatever the number of reviewers or reviews.
    """
    period = Q(item__project=project, created_at__gte=start, created_at__lt=end)
    counts = dict(
        Review.objects.filter(period, item__is_control=False)
        .values("reviewer_id")
        .annotate(n=Count("pk"))
        .values_list("reviewer_id", "n")
    )
    accuracy = control_accuracy(project=project, start=start, end=end)
    standings = {s.reviewer_id: s for s in ReviewerStanding.objects.filter(project=project)}
    quarantined = dict(
        Quarantine.objects.filter(project=project)
        .values("reviewer_id")
        .annotate(n=Count("pk"))
        .values_list("reviewer_id", "n")
    )
    rows = []
    for user in project_reviewers(project=project, start=start, end=end):
        standing = standings.get(user.pk)
        rows.append(
            ReviewerRow(
                reviewer_id=user.pk,
                username=user.get_username(),
                decisions=counts.get(user.pk, 0),
                accuracy=accuracy.get(user.pk),
                flagged=bool(standing and standing.flagged),
                signals=standing.signals if standing else {},
                quarantines=quarantined.get(user.pk, 0),
            )
        )
    return rows


def reviewer_of_project(*, project: Project, reviewer_id: int):
    """The user, if they are a member of ``project`` or have reviewed in it; else None."""
    reviewed = Review.objects.filter(item__project=project, reviewer_id=reviewer_id)
    return (
        get_user_model()
        .objects.filter(pk=reviewer_id)
        .filter(Q(memberships__project=project) | Q(pk__in=reviewed.values("reviewer_id")))
        .distinct()
        .first()
    )
