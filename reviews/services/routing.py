"""Routing: which items a human must see, and in what order.

Gate mode (HITL) sends every item that survived the checks to review. Monitor
mode (HOTL) releases items automatically unless a trigger fires: confidence
below the project's threshold, a risk keyword, a check warning, a judge flag,
or the random audit sample (released, but still queued for review last).

A monitor project may set a review budget (``Budget``): "the N% least
confident" per model version, ranked against a rolling window of recent
confidences and paced so the share holds as the model or the traffic
changes, and/or a daily capacity. Risk triggers always go to review and
count against the budget first.
"""

import bisect
import hashlib
from collections import deque
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from reviews.checks import KeywordMatcher
from reviews.models import BudgetDay, BudgetState, ItemStatus, Project, ProjectMode
from reviews.models.items import PRIORITY_AUDIT, PRIORITY_NORMAL, PRIORITY_RISK

REASON_LOW_CONFIDENCE = "low_confidence"
REASON_AUDIT = "audit_sample"
REASON_GATE = "gate"
REASON_JUDGE_FLAG = "judge_flag"
REASON_RISK_KEYWORD = "risk_keyword:"
REASON_CHECK_WARNING = "check_warning:"
# What the judge or a check flagged (reviews.quality's "approved a flagged item").
FLAG_REASON_PREFIXES = (REASON_CHECK_WARNING, REASON_JUDGE_FLAG)
RISK_REASON_PREFIXES = (REASON_RISK_KEYWORD, *FLAG_REASON_PREFIXES)


@dataclass
class Route:
    status: str
    in_queue: bool
    priority: int
    is_audit: bool = False
    reasons: list[str] = field(default_factory=list)


def audit_draw(salt: str, external_id: str) -> float:
    """A uniform number in [0, 1) fixed by the project's salt and the item's id."""
    digest = hashlib.sha256(f"{salt}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class RiskMatcher:
    """Finds a project's risk keywords in prompt and output."""

    def __init__(self, keywords: list[str]) -> None:
        self._matcher = KeywordMatcher(keywords)

    def find(self, *texts: str) -> list[str]:
        return sorted(self._matcher.find(*texts))


def trigger_reasons(
    *,
    project: Project,
    confidence: float | None,
    risk_hits: list[str],
    warnings: list[str],
    judge_flagged: bool = False,
) -> list[str]:
    reasons = [f"{REASON_RISK_KEYWORD}{word}" for word in risk_hits]
    reasons += [f"{REASON_CHECK_WARNING}{name}" for name in warnings]
    if judge_flagged:
        reasons.append(REASON_JUDGE_FLAG)
    if confidence is not None and confidence < project.confidence_threshold:
        reasons.append(REASON_LOW_CONFIDENCE)
    return reasons


def route(
    *,
    project: Project,
    external_id: str,
    reasons: list[str],
    budget: "Budget | None" = None,
    model_version: str = "",
    confidence: float | None = None,
) -> Route:
    """Where an item goes once checks (and the judge, if any) are done.

    With a ``budget`` (monitor projects that set one, see ``budget_open``) the
    budget decides whether a riskless item is among the least confident to
    review; risk triggers always go.
    """
    risky = any(reason.startswith(RISK_REASON_PREFIXES) for reason in reasons)
    priority = PRIORITY_RISK if risky else PRIORITY_NORMAL
    if project.mode == ProjectMode.GATE:
        return Route(ItemStatus.PENDING_REVIEW, True, priority, reasons=[REASON_GATE, *reasons])
    if budget is not None:
        below_threshold = REASON_LOW_CONFIDENCE in reasons
        reasons = [reason for reason in reasons if reason != REASON_LOW_CONFIDENCE]
        chosen = budget.decide(
            model_version=model_version,
            confidence=confidence,
            risky=risky,
            below_threshold=below_threshold,
        )
        if chosen and not risky:
            reasons.append(REASON_LOW_CONFIDENCE)
    if reasons:
        return Route(ItemStatus.PENDING_REVIEW, True, priority, reasons=list(reasons))
    if audit_draw(project.audit_salt, external_id) < project.audit_sample_rate:
        return Route(
            ItemStatus.AUTO_APPROVED, True, PRIORITY_AUDIT, is_audit=True, reasons=[REASON_AUDIT]
        )
    return Route(ItemStatus.AUTO_APPROVED, False, PRIORITY_NORMAL)


# --- the review budget --------------------------------------------------------------

# Pacing: the rank threshold is the share plus debt / PACING_ITEMS, and the debt
# (share owed minus items sent) is clamped to ±PACING_ITEMS. Small enough that a
# shift in the confidences moves the realised share by at most a few dozen
# items before the window catches up; large enough that in steady state the
# least confident items, not merely the next ones, are sent.
PACING_ITEMS = 20.0
# Below this many recent confidences the rank is unknown (a new model version):
# pacing alone decides, so the share holds from the first item.
MIN_WINDOW = 20


class _Window:
    """The recent confidences of one model version: arrival order and sorted."""

    def __init__(self, state: BudgetState, size: int) -> None:
        self.state = state
        self.size = size
        self.order = deque(state.recent[-size:])
        self.sorted = sorted(self.order)

    def rank(self, confidence: float | None) -> float | None:
        """Share of recent confidences below ``confidence`` (unknown sorts lowest)."""
        if len(self.sorted) < MIN_WINDOW:
            return None
        if confidence is None:
            return 0.0
        return bisect.bisect_left(self.sorted, confidence) / len(self.sorted)

    def add(self, confidence: float | None) -> None:
        if confidence is None:
            return
        self.order.append(confidence)
        bisect.insort(self.sorted, confidence)
        while len(self.order) > self.size:
            oldest = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, oldest)]


class Budget:
    """A monitor project's review budget, open inside one routing transaction.

    ``decide`` is asked once per routed item, in order; ``close`` saves the
    windows, pacing and the day's counters. The project's budget rows stay
    locked until the transaction ends, so concurrent batches route one after
    the other and the share holds across them.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self.share = project.budget_share
        self.capacity = project.budget_daily_capacity
        self.windows: dict[str, _Window] = {}
        self.day = _day_locked(project)

    def _window(self, model_version: str) -> _Window:
        window = self.windows.get(model_version)
        if window is None:
            BudgetState.objects.bulk_create(
                [BudgetState(project=self.project, model_version=model_version, share=self.share)],
                ignore_conflicts=True,
            )
            state = BudgetState.objects.select_for_update().get(
                project=self.project, model_version=model_version
            )
            if state.share != self.share:  # a new target: the old pacing no longer applies
                state.share, state.debt = self.share, 0.0
            window = self.windows[model_version] = _Window(state, self.project.budget_window)
        return window

    def decide(
        self, *, model_version: str, confidence: float | None, risky: bool, below_threshold: bool
    ) -> bool:
        """Whether this item goes to review; counts it either way."""
        day = self.day
        day.considered += 1
        window = self._window(model_version) if self.share is not None else None
        if risky:
            chosen = True
        elif window is not None:
            state = window.state
            rank = window.rank(confidence)
            if rank is None:  # no distribution yet: send whenever a whole item is owed
                chosen = state.debt + self.share >= 1.0
            else:
                chosen = rank < self.share + state.debt / PACING_ITEMS
        else:
            chosen = below_threshold
        # Pacing counts what the share picked, so a full day does not wind it up.
        picked = chosen
        full = self.capacity is not None and day.sent_risk + day.sent_budget >= self.capacity
        if chosen and not risky and full:
            chosen = False
            day.over_capacity += 1
        if risky:
            day.sent_risk += 1
        elif chosen:
            day.sent_budget += 1
        elif below_threshold:
            day.released_below_threshold += 1
        if window is not None:
            state = window.state
            state.debt = max(
                -PACING_ITEMS, min(PACING_ITEMS, state.debt + self.share - (1.0 if picked else 0.0))
            )
            window.add(confidence)
        return chosen

    def close(self) -> None:
        for window in self.windows.values():
            window.state.recent = list(window.order)
            window.state.save(update_fields=["recent", "debt", "share", "updated_at"])
        self.day.save(
            update_fields=[
                "considered",
                "sent_risk",
                "sent_budget",
                "over_capacity",
                "released_below_threshold",
            ]
        )


def _day_locked(project: Project) -> BudgetDay:
    today = timezone.now().date()
    BudgetDay.objects.bulk_create([BudgetDay(project=project, day=today)], ignore_conflicts=True)
    return BudgetDay.objects.select_for_update().get(project=project, day=today)


def budget_applies(project: Project) -> bool:
    """Whether ``project`` routes through a review budget: a monitor project with a
    share or a daily capacity."""
    return project.mode == ProjectMode.MONITOR and (
        project.budget_share is not None or project.budget_daily_capacity is not None
    )


def budget_open(*, project: Project) -> Budget | None:
    """The project's review budget for routing in this transaction, or None without one.

    Only monitor projects with a share or a daily capacity have one. Call
    inside the transaction that routes the items, and ``close()`` it before
    the transaction ends.
    """
    if not budget_applies(project):
        return None
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("budget_open must run inside a transaction.")
    return Budget(project)
