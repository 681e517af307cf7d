"""Comparison items in the core: tier-1 checks per candidate, routing, candidate rows.

A comparison is one prompt (or conversation) with 2-4 candidate outputs. The
project's checks run on every candidate. A candidate failing a blocking check
is kept and marked ``check_failed`` (shown as failed, never the gold answer);
its failure counts as a warning trigger. While at least two candidates pass,
the item goes to review; with fewer there is nothing left to compare and it
is auto-rejected, with ``check_failed:<check>`` reasons like a single item.

Comparisons always go to a human, in monitor mode too (a preference needs
one): they skip the review budget, the audit draw and the LLM judge
(``reviews.judge`` grades one output against a rubric, not a choice).
"""

import hashlib
import random
import secrets
from dataclasses import dataclass
from typing import Any

from reviews.checks import CompiledCheck, Outcome, run_checks
from reviews.models import (
    Candidate,
    ItemStatus,
    Preference,
    Project,
    ReviewItem,
    Severity,
    Verdict,
)
from reviews.models.items import PRIORITY_NORMAL, PRIORITY_RISK
from reviews.services.review_rules import corrected_output_stored, decision_validate
from reviews.services.routing import RISK_REASON_PREFIXES, RiskMatcher, Route, trigger_reasons

REASON_COMPARISON = "comparison"


@dataclass
class CandidateChecks:
    outcomes: list[Outcome]

    @property
    def blocking(self) -> list[str]:
        return [o.rule.name for o in self.outcomes if o.blocking_failure]

    @property
    def warnings(self) -> list[str]:
        return [o.rule.name for o in self.outcomes if o.warning]

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "name": o.rule.name,
                "kind": o.rule.kind,
                "severity": o.rule.severity,
                "passed": o.passed,
                "message": o.message,
            }
            for o in self.outcomes
        ]


def comparison_confidence(candidates: list[dict[str, Any]]) -> float | None:
    """The item's confidence: the lowest known candidate confidence (queue order, triggers)."""
    known = [c["confidence"] for c in candidates if c.get("confidence") is not None]
    return min(known) if known else None


def comparison_route(
    *,
    project: Project,
    item: ReviewItem,
    candidates: list[dict[str, Any]],
    checks: list[CompiledCheck],
    risk: RiskMatcher,
) -> tuple[Route, list[CandidateChecks], str]:
    """(route, checks per candidate, why) for a new comparison item; see the module doc."""
    results = [CandidateChecks(run_checks(checks, c["output"])) for c in candidates]
    passing = sum(1 for result in results if not result.blocking)
    failed = sorted({name for result in results for name in result.blocking})
    if passing < 2:
        route = Route(
            ItemStatus.AUTO_REJECTED,
            in_queue=False,
            priority=PRIORITY_NORMAL,
            reasons=[f"check_failed:{name}" for name in failed],
        )
        why = (
            f"auto-rejected: {len(candidates) - passing} of {len(candidates)} candidates "
            f"failed blocking checks ({', '.join(failed)})"
        )
        return route, results, why
    warnings = sorted({name for result in results for name in (*result.blocking, *result.warnings)})
    reasons = trigger_reasons(
        project=project,
        confidence=item.confidence,
        risk_hits=risk.find(item.prompt, *(c["output"] for c in candidates)),
        warnings=warnings,
    )
    risky = any(reason.startswith(RISK_REASON_PREFIXES) for reason in reasons)
    route = Route(
        ItemStatus.PENDING_REVIEW,
        in_queue=True,
        priority=PRIORITY_RISK if risky else PRIORITY_NORMAL,
        reasons=[REASON_COMPARISON, *reasons],
    )
    found = ", ".join(reasons) or "no trigger"
    why = f"checks run on {len(candidates)} candidates; routed to review ({found})"
    return route, results, why


def candidates_build(
    *, item: ReviewItem, candidates: list[dict[str, Any]], results: list[CandidateChecks]
) -> list[Candidate]:
    """Unsaved candidate rows of a stored ``item``, in the submitted order."""
    return [
        Candidate(
            item_id=item.pk,
            position=position,
            output=submitted["output"],
            model_name=submitted["model_name"],
            model_version=submitted["model_version"],
            confidence=submitted.get("confidence"),
            checks=result.as_json(),
            check_failed=bool(result.blocking),
        )
        for position, (submitted, result) in enumerate(zip(candidates, results, strict=True))
    ]


def candidate_order_draw(*, candidate_ids: list[int], seed: str) -> list[int]:
    """A random order of ``candidate_ids`` fixed by ``seed`` (stored on the claim).

    The seed holds the claim's own randomness, so two reviewers (and two claims
    by one reviewer) draw independent orders.
    """
    digest = hashlib.sha256(seed.encode()).digest()
    order = sorted(candidate_ids)
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def claim_candidate_order(*, item: ReviewItem, reviewer) -> list[int]:
    """The order a new claim shows ``item``'s candidates in ([] for a single item).

    Drawn per claim from a fresh random seed and stored on the claim, so a
    reload shows the same order and two reviewers usually see different ones.
    """
    if not item.is_comparison:
        return []
    ids = list(Candidate.objects.filter(item=item).values_list("pk", flat=True))
    return candidate_order_draw(
        candidate_ids=ids, seed=f"{item.pk}:{reviewer.pk}:{secrets.token_hex(16)}"
    )


# --- preferences: the decision on a comparison --------------------------------------


@dataclass(frozen=True)
class PreferenceInput:
    """A preference as submitted: ``winner_id`` names the best candidate (``winner``);
    ``corrected_output``, when it differs from the winner's output, corrects it."""

    preference: str
    winner_id: int | None = None
    corrected_output: str | None = None
    reason_code: str = ""
    note: str = ""
    severity: str = ""


@dataclass(frozen=True)
class PreferenceDecision:
    """What a valid preference stands for, as a review and as a final decision."""

    preference: str
    winner: Candidate | None
    verdict: str
    corrected_output: str | None
    reason_code: str
    severity: str


def preference_decide(
    *, project: Project, candidates: list[Candidate], data: PreferenceInput
) -> tuple[PreferenceDecision | None, dict[str, list[str]]]:
    """(decision, {}) for an acceptable preference, (None, messages per field) otherwise.

    Shared by the reviewer's preference and the senior's own decision on a
    case. ``winner`` must be one of ``candidates`` (the item's own: a tampered
    id names nothing) that passed its blocking checks. All bad is a reject: a
    reason from the taxonomy and a severity, "other" with a note. A winner
    (verdict approve) or a tie (approve, nothing single is released) take an
    optional reason and severity; a corrected winner is a correction held to
    the correction rules against the winner's output (``decision_validate``).
    Keys: ``preference``, ``winner``, ``corrected_output``, ``reason_code``,
    ``severity``, ``note``.
    """
    if data.preference not in Preference.values:
        return None, {"preference": ["Choose the best candidate, a tie or all bad."]}
    winner = None
    corrected = None
    if data.preference == Preference.WINNER:
        winner = next((c for c in candidates if c.pk == data.winner_id), None)
        if winner is None:
            return None, {"winner": ["Choose one of this item's candidates."]}
        if winner.check_failed:
            return None, {"winner": ["This candidate failed a blocking check; it cannot win."]}
        text = data.corrected_output
        if text is not None and text.strip() and text != winner.output:
            corrected = text
    if data.preference == Preference.ALL_BAD:
        verdict = Verdict.REJECT
    elif corrected is not None:
        verdict = Verdict.CORRECT
    else:
        verdict = Verdict.APPROVE
    errors = decision_validate(
        project=project,
        original=winner.output if winner is not None else "",
        verdict=verdict,
        corrected_output=corrected,
        reason_code=data.reason_code,
        severity=data.severity,
        note=data.note,
    )
    reason_code, severity = data.reason_code, data.severity
    if verdict == Verdict.APPROVE:
        # Optional on a winner or a tie, but a reason given must be one of the project's.
        if reason_code and reason_code not in (project.reason_codes or []):
            errors["reason_code"] = [f"'{reason_code}' is not one of this project's reasons."]
        if severity and severity not in Severity.values:
            errors["severity"] = ["Choose a severity."]
        severity = severity or Severity.NONE
    if errors:
        return None, errors
    stored = (
        corrected_output_stored(original=winner.output, corrected_output=corrected)
        if corrected is not None
        else None
    )
    return (
        PreferenceDecision(
            preference=data.preference,
            winner=winner,
            verdict=verdict,
            corrected_output=stored,
            reason_code=reason_code,
            severity=severity,
        ),
        {},
    )


def preference_describe(*, preference: str, winner: Candidate | None, verdict: str) -> str:
    """A short history reason that names the candidate by id, never by model."""
    if preference == Preference.WINNER and winner is not None:
        corrected = " (corrected)" if verdict == Verdict.CORRECT else ""
        return f"Preferred candidate {winner.pk}{corrected}"
    return Preference(preference).label
