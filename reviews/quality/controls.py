"""Control items: known-answer items served blindly to reviewers, and their scoring.

A control is a ``ReviewItem`` row with ``is_control`` and a ``ControlAnswer``.
It is never in the review queue (``in_queue`` stays false, so queue counts,
the claim query and every client path ignore it), never final, never
exported and never sent to clients: the workspace hands it out through
``controls_claimable`` at the project's ``control_rate``, and each reviewer
sees a control at most once.

In a project with an enabled judge an uploaded control waits in
``pending_judge`` and is judged by the judge's own jobs, like an ingested
item; it is served once the judge has answered (``controls_judged`` then
gives it the reasons an item with that verdict would get), so its page shows
a verdict as a real item's does.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from adjudication.agreement import outputs_equal
from reviews.access import Capability, may
from reviews.checks import compile_checks, run_checks
from reviews.errors import DomainError, NotAllowed
from reviews.models import (
    Assignment,
    AssignmentState,
    CheckResult,
    ControlAnswer,
    ItemStatus,
    Project,
    Review,
    ReviewItem,
    Verdict,
)
from reviews.models.items import PRIORITY_NORMAL
from reviews.services.ingest import INGEST_FIELDS, INGESTED, payload_hash
from reviews.services.judge_queue import judge_config_active, judge_enqueue
from reviews.services.routing import (
    REASON_AUDIT,
    REASON_LOW_CONFIDENCE,
    RiskMatcher,
    route,
    trigger_reasons,
)
from reviews.services.search import search_pending_add
from reviews.services.transitions import control_routed_to_review
from reviews.transcripts import TRANSCRIPT_FIELDS

HUMAN_DECIDED = (ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED)
# What a client submitted (ingest's own lists), less the client's id: a control
# gets a fresh one.
CONTENT_FIELDS = (
    *(name for name in INGEST_FIELDS if name != "external_id"),
    *TRANSCRIPT_FIELDS,
)


class ControlInvalid(DomainError):
    """A control the rules refuse; ``detail`` holds messages per field."""


@dataclass(frozen=True)
class KnownAnswer:
    verdict: str
    expected_output: str | None = None
    must_change: tuple[str, ...] = ()


def _pointer_get(document: Any, pointer: str) -> Any:
    """The value at JSON pointer ``pointer`` (RFC 6901); KeyError when absent."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise KeyError(pointer)
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(document, list):
            if not token.isdigit() or int(token) >= len(document):
                raise KeyError(pointer)
            document = document[int(token)]
        elif isinstance(document, dict):
            document = document[token]
        else:
            raise KeyError(pointer)
    return document


def answer_validate(*, output: str, answer: KnownAnswer, allow_corrections: bool) -> dict:
    """Messages per field for a known answer that cannot be checked; empty when fine."""
    errors: dict[str, list[str]] = {}
    if answer.verdict not in Verdict.values:
        errors["expected_verdict"] = ["Choose approve, reject or correct."]
        return errors
    if answer.verdict == Verdict.CORRECT and not allow_corrections:
        errors["expected_verdict"] = ["This project does not allow corrections."]
    if answer.verdict != Verdict.CORRECT:
        if answer.expected_output or answer.must_change:
            errors["expected_verdict"] = ["An expected output or paths need the verdict correct."]
        return errors
    if answer.expected_output is not None and answer.expected_output.strip() == output.strip():
        errors["expected_output"] = ["The expected correction must differ from the output."]
    if answer.must_change:
        try:
            document = json.loads(output)
        except ValueError:
            errors["must_change"] = ["Paths that must change need a JSON output."]
            return errors
        for pointer in answer.must_change:
            try:
                _pointer_get(document, pointer)
            except KeyError:
                errors.setdefault("must_change", []).append(f"{pointer!r} is not in the output.")
    return errors


def control_review_correct(*, answer: ControlAnswer, original: str, review: Review) -> bool:
    """Whether ``review`` gives the control's known answer.

    The verdict must match. For a correction, when an expected output is
    known the correction must agree with it (the double-review rule:
    whitespace, and for JSON formatting and key order, do not matter); each
    path in ``must_change`` must hold a different value than the original.
    """
    if review.verdict != answer.expected_verdict:
        return False
    if review.verdict != Verdict.CORRECT:
        return True
    corrected = review.corrected_output or ""
    if answer.expected_output is not None and not outputs_equal(
        original=original, left=corrected, right=answer.expected_output
    ):
        return False
    if answer.must_change:
        try:
            before, after = json.loads(original), json.loads(corrected)
        except ValueError:
            return False
        for pointer in answer.must_change:
            try:
                old = _pointer_get(before, pointer)
            except KeyError:
                continue
            try:
                if _pointer_get(after, pointer) == old:
                    return False
            except KeyError:
                continue  # removing the value changes it
    return True


def control_review_score(*, review: Review, item: ReviewItem) -> bool:
    """Record on ``review`` whether it matched its control's known answer.

    Call in ``review_submit``'s transaction, holding the item's lock.
    """
    review.control_correct = control_review_correct(
        answer=item.control_answer, original=item.output, review=review
    )
    review.save(update_fields=["control_correct"])
    return review.control_correct


def _control_item(
    *,
    project: Project,
    content: dict[str, Any],
    reasons: list,
    priority: int,
    why: str,
    by,
    status: str = ItemStatus.PENDING_REVIEW,
):
    """A control row: pending review (or the judge) but never in the queue, under a fresh uuid.

    The id looks like any client's uuid; a client submitting that id later is
    astronomically unlikely. ``why`` is its history's first reason, written
    the way ingest writes one, by ``by`` (the admin who made it): reviewers see
    neither the uploader nor any item's ingest channel on the timeline, and
    the history pages are its project admins' only.
    """
    external_id = str(uuid.uuid4())
    payload = {"external_id": external_id, **content}
    item = ReviewItem(
        project=project,
        external_id=external_id,
        payload_hash=payload_hash(payload),
        status=status,
        review_reasons=list(reasons),
        priority=priority,
        is_control=True,
        **content,
    )
    item._change_reason = why
    item._history_user = by
    item.save()
    search_pending_add(item_ids=[item.pk])
    return item


@dataclass(frozen=True)
class _Routed:
    reasons: list[str]
    priority: int
    outcomes: list
    why: str
    status: str = ItemStatus.PENDING_REVIEW


def _review_route(*, project: Project, reasons: list[str]) -> tuple[list[str], int]:
    """The reasons and priority of an item with ``reasons`` that routing sent to review.

    In monitor mode a control nothing would have sent to review carries
    ``low_confidence``, like an item the budget chose (the budget is left alone).
    """
    decision = route(project=project, external_id="", reasons=reasons)
    found = [r for r in decision.reasons if r != REASON_AUDIT] or [REASON_LOW_CONFIDENCE]
    priority = decision.priority if decision.status == ItemStatus.PENDING_REVIEW else 100
    return found, priority


def _route_like_ingest(*, project: Project, content: dict[str, Any], judged: bool) -> _Routed:
    """The checks and routing reasons ingest would give this content, so that an
    uploaded control's page shows what a client's item with it would show.

    Refused (``ControlInvalid``) when a blocking check rejects the output: such
    an item never reaches a reviewer. ``judged`` (the project has an enabled
    judge): it waits for the judge with the triggers found so far, as ingest
    leaves an item.
    """
    outcomes = run_checks(compile_checks(list(project.check_rules.all())), content["output"])
    blocking = [o.rule.name for o in outcomes if o.blocking_failure]
    if blocking:
        raise ControlInvalid(
            "A blocking check rejects this output.",
            detail={"output": [f"Rejected by the check(s) {', '.join(blocking)}."]},
        )
    reasons = trigger_reasons(
        project=project,
        confidence=content.get("confidence"),
        risk_hits=RiskMatcher(project.risk_keywords).find(content["prompt"], content["output"]),
        warnings=[o.rule.name for o in outcomes if o.warning],
    )
    if judged:
        waiting = ", ".join(reasons) or "no trigger yet"
        return _Routed(
            reasons=reasons,
            priority=PRIORITY_NORMAL,
            outcomes=outcomes,
            why=f"{INGESTED}; checks passed; waiting for the judge ({waiting})",
            status=ItemStatus.PENDING_JUDGE,
        )
    found, priority = _review_route(project=project, reasons=reasons)
    why = f"{INGESTED}; checks passed; routed to pending_review ({', '.join(found)})"
    return _Routed(reasons=found, priority=priority, outcomes=outcomes, why=why)


def _check_results_copy(*, item: ReviewItem, results) -> None:
    now = timezone.now()
    CheckResult.objects.bulk_create(
        CheckResult(
            item=item,
            rule_id=result.rule_id,
            name=result.name,
            kind=result.kind,
            severity=result.severity,
            passed=result.passed,
            message=result.message,
            created_at=now,
        )
        for result in results
    )


@transaction.atomic
def control_create(
    *, project: Project, content: dict[str, Any], answer: KnownAnswer, by
) -> ControlAnswer:
    """Store an uploaded control: item content with its known answer (project admins).

    ``content`` holds the item fields (prompt, output, model name/version,
    confidence, messages, context, metadata) already validated as the API
    does. The project's checks and routing triggers run on it as ingest would
    run them (a blocking failure refuses it). With an enabled judge it waits in
    ``pending_judge`` for the judge job enqueued after commit, and is not
    served until the judge has answered. Refused with messages per field
    (``ControlInvalid``) when the answer cannot be checked against the output.
    """
    if not may(by, Capability.ADMINISTER, project):
        raise NotAllowed("Only a project admin may add controls.")
    errors = answer_validate(
        output=content["output"], answer=answer, allow_corrections=project.allow_corrections
    )
    if errors:
        raise ControlInvalid("The known answer cannot be checked.", detail=errors)
    judge = judge_config_active(project=project)
    routed = _route_like_ingest(project=project, content=content, judged=judge is not None)
    item = _control_item(
        project=project,
        content=content,
        reasons=routed.reasons,
        priority=routed.priority,
        why=routed.why,
        by=by,
        status=routed.status,
    )
    _check_results_copy(
        item=item,
        results=[
            CheckResult(
                rule_id=o.rule.pk,
                name=o.rule.name,
                kind=o.rule.kind,
                severity=o.rule.severity,
                passed=o.passed,
                message=o.message,
            )
            for o in routed.outcomes
        ],
    )
    control = ControlAnswer(
        item=item,
        project=project,
        expected_verdict=answer.verdict,
        expected_output=answer.expected_output,
        must_change=list(answer.must_change),
        created_by=by,
    )
    control._history_user = by
    control.save()
    if judge is not None:
        judge_enqueue(config=judge, item_ids=[item.pk])
    return control


def controls_judged(*, entries: list[tuple[ReviewItem, list[str], str]]) -> None:
    """Send controls the judge has answered for (or a disabled judge released) to review.

    ``entries`` holds (control, reasons, why) as the judge routes real items:
    the reasons found at ingest plus the judge's flag, and the verdict line
    for the history. A control goes to ``pending_review`` (never the queue,
    never final, whatever the verdict: a real item the judge would auto-approve
    is one no reviewer sees, so it gets the reasons ``_review_route`` gives)
    with the history line a routed item gets. Call in the judge's transaction,
    holding the rows' locks.
    """
    for item, reasons, why in entries:
        item.review_reasons, item.priority = _review_route(project=item.project, reasons=reasons)
        _control_to_review(item=item, why=f"{why}; routed to {ItemStatus.PENDING_REVIEW.value}")


def _control_to_review(*, item: ReviewItem, why: str) -> None:
    """Move a control out of ``pending_judge`` to ``pending_review`` (not the queue), with
    ``why`` as its history line, written without a user as the judge's routing is."""
    control_routed_to_review(item=item, why=why)


def _arrival(source: ReviewItem) -> tuple[str, str | None]:
    """How ``source`` reached review, as its history says: ingest's line, and the judge's
    routing line when it waited for the judge (None when it did not)."""
    rows = list(
        source.history.order_by("history_date", "history_id").values_list(
            "status", "history_change_reason"
        )[:2]
    )
    if not rows:
        return INGESTED, None
    first = rows[0][1] or INGESTED
    judged = rows[0][0] == ItemStatus.PENDING_JUDGE and len(rows) == 2
    return first, (rows[1][1] or "") if judged else None


@transaction.atomic
def controls_create_from_items(*, items: list[ReviewItem], by) -> list[ControlAnswer]:
    """Make a control of each human-decided final item (project admins of its project).

    The control copies the item's content, routing reasons, check results,
    judge verdict and the history lines of how it reached review (ingest's,
    and the judge's routing when it waited for the judge), so its review page
    and timeline read like the item's; the known answer is the
    final decision (for a correction, the released output). The item itself
    stays as it is, released to its client. Items that are not human-decided
    or not the caller's to administer are left out (``NotAllowed`` if none).
    """
    made = []
    for source in items:
        if source.status not in HUMAN_DECIDED or source.is_control:
            continue
        if not may(by, Capability.ADMINISTER, source.project_id):
            continue
        content = {name: getattr(source, name) for name in CONTENT_FIELDS}
        first, judged = _arrival(source)
        item = _control_item(
            project=source.project,
            content=content,
            reasons=source.review_reasons,
            priority=source.priority,
            why=first,
            by=by,
            status=ItemStatus.PENDING_JUDGE if judged is not None else ItemStatus.PENDING_REVIEW,
        )
        _check_results_copy(item=item, results=source.check_results.all())
        if judged is not None:
            # The judge's routing line too: a real item's history has both.
            _control_to_review(item=item, why=judged)
        verdict = source.judge_verdicts.order_by("-created_at", "-id").first()
        if verdict is not None:
            # Stamped now (after the routing line, as the judge stores its verdicts).
            verdict.pk = None
            verdict.item = item
            verdict.save()
        verdict_value = source.final_verdict or Verdict.APPROVE
        control = ControlAnswer(
            item=item,
            project=source.project,
            expected_verdict=verdict_value,
            expected_output=source.final_output if verdict_value == Verdict.CORRECT else None,
            source_item=source,
            created_by=by,
        )
        control._history_user = by
        control._change_reason = f"Made from item {source.pk} ({source.external_id})"
        control.save()
        made.append(control)
    if not made:
        raise NotAllowed("None of the selected items can become a control.")
    return made


def controls_claimable(*, reviewer, project: Project, now) -> QuerySet[ReviewItem]:
    """Active controls of ``project`` that ``reviewer`` has neither reviewed nor holds.

    Cheap by construction: it reads the project's controls (a partial index),
    never the queue. A control the reviewer skipped is not offered again, nor
    one still waiting for the judge.
    """
    from_reviewer = Assignment.objects.filter(item=OuterRef("pk"), reviewer=reviewer)
    return (
        ReviewItem.objects.filter(
            project=project,
            is_control=True,
            control_answer__active=True,
            status=ItemStatus.PENDING_REVIEW,
        )
        .exclude(Exists(Review.objects.filter(item=OuterRef("pk"), reviewer=reviewer)))
        .exclude(
            Exists(
                from_reviewer.filter(
                    Q(state=AssignmentState.ACTIVE, lease_expires_at__gt=now)
                    | Q(state=AssignmentState.SKIPPED)
                )
            )
        )
        .order_by("id")
    )


def control_check(*, project: Project, content: dict[str, Any], answer: KnownAnswer) -> dict:
    """Messages per field why ``control_create`` would refuse this control; empty when fine."""
    errors = answer_validate(
        output=content["output"], answer=answer, allow_corrections=project.allow_corrections
    )
    try:
        _route_like_ingest(project=project, content=content, judged=False)
    except ControlInvalid as exc:
        errors.update(exc.detail)
    return errors


@transaction.atomic
def control_answer_update(
    *, control: ControlAnswer, answer: KnownAnswer, active: bool, by
) -> ControlAnswer:
    """Change a control's known answer or whether it is served (project admins).

    Reviews already scored keep their score: the answer is what was known when
    they were written. Refused like ``control_create`` when the answer cannot
    be checked against the control's output.
    """
    control = (
        ControlAnswer.objects.select_for_update()
        .select_related("item", "project")
        .get(pk=control.pk)
    )
    if not may(by, Capability.ADMINISTER, control.project_id):
        raise NotAllowed("Only a project admin may change a control.")
    errors = answer_validate(
        output=control.item.output,
        answer=answer,
        allow_corrections=control.project.allow_corrections,
    )
    if errors:
        raise ControlInvalid("The known answer cannot be checked.", detail=errors)
    control.expected_verdict = answer.verdict
    control.expected_output = answer.expected_output
    control.must_change = list(answer.must_change)
    control.active = active
    control._history_user = by
    control.save()
    return control


@transaction.atomic
def controls_set_active(*, items: list[ReviewItem], active: bool, by) -> int:
    """Serve (``active``) or stop serving the controls among ``items``; how many changed.

    Only controls of projects ``by`` administers; others are left as they are.
    A control is never deleted: its reviews keep measuring the reviewers who
    gave them.
    """
    changed = 0
    controls = ControlAnswer.objects.select_for_update().filter(
        item__in=[item.pk for item in items], active=not active
    )
    for control in controls.order_by("pk"):
        if not may(by, Capability.ADMINISTER, control.project_id):
            continue
        control.active = active
        control._history_user = by
        control._change_reason = "Served again" if active else "No longer served"
        control.save(update_fields=["active"])
        changed += 1
    return changed
