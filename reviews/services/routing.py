"""Routing: which items a human must see, and in what order.

Gate mode (HITL) sends every item that survived the checks to review. Monitor
mode (HOTL) releases items automatically unless a trigger fires: confidence
below the project's threshold, a risk keyword, a check warning, a judge flag,
or the random audit sample (released, but still queued for review last).
"""

import hashlib
from dataclasses import dataclass, field

from reviews.checks import KeywordMatcher
from reviews.models import ItemStatus, Project, ProjectMode
from reviews.models.items import PRIORITY_AUDIT, PRIORITY_NORMAL, PRIORITY_RISK

REASON_LOW_CONFIDENCE = "low_confidence"
REASON_AUDIT = "audit_sample"
REASON_GATE = "gate"
REASON_JUDGE_FLAG = "judge_flag"
RISK_REASON_PREFIXES = ("risk_keyword:", "check_warning:", REASON_JUDGE_FLAG)


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
    reasons = [f"risk_keyword:{word}" for word in risk_hits]
    reasons += [f"check_warning:{name}" for name in warnings]
    if judge_flagged:
        reasons.append(REASON_JUDGE_FLAG)
    if confidence is not None and confidence < project.confidence_threshold:
        reasons.append(REASON_LOW_CONFIDENCE)
    return reasons


def route(*, project: Project, external_id: str, reasons: list[str]) -> Route:
    """Where an item goes once checks (and the judge, if any) are done."""
    risky = any(reason.startswith(RISK_REASON_PREFIXES) for reason in reasons)
    priority = PRIORITY_RISK if risky else PRIORITY_NORMAL
    if project.mode == ProjectMode.GATE:
        return Route(ItemStatus.PENDING_REVIEW, True, priority, reasons=[REASON_GATE, *reasons])
    if reasons:
        return Route(ItemStatus.PENDING_REVIEW, True, priority, reasons=list(reasons))
    if audit_draw(project.audit_salt, external_id) < project.audit_sample_rate:
        return Route(
            ItemStatus.AUTO_APPROVED, True, PRIORITY_AUDIT, is_audit=True, reasons=[REASON_AUDIT]
        )
    return Route(ItemStatus.AUTO_APPROVED, False, PRIORITY_NORMAL)
