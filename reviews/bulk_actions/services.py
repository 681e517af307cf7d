"""Bulk actions on items: send back to the queue, reopen, assign, delete, export.

Each action asks ``reviews.access`` about every item's project and refuses
the items the user may not act on (they are reported, never touched). Each
item changes in its own transaction through the service that owns the change
(the lifecycle, the workspace, adjudication, datasets), so each change has
its history row naming the user, and one refused item never undoes the others.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from adjudication.models import AdjudicationCase
from adjudication.services import item_reopen
from datasets.models import DatasetExport, DatasetExportItem
from datasets.services import export_create
from reviews.access import Capability, projects_where
from reviews.errors import DomainError
from reviews.models import Assignment, AssignmentState, ItemStatus, Project, ReviewItem
from reviews.services.transitions import TransitionError, item_transition
from reviews.workspace.services import assignment_assign

# How many items one action may touch (the item list's "select all" can pick more).
MAX_ITEMS = 10_000


@dataclass
class BulkOutcome:
    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    """Item id -> why it was left alone."""

    def summary(self, verb: str) -> str:
        text = f"{verb} {len(self.done)} item(s)."
        if self.refused:
            reasons = sorted(set(self.refused.values()))
            text += f" Left {len(self.refused)} alone: {'; '.join(reasons[:3])}"
        return text


def _permitted(*, user, capability: Capability, item_ids: list[int], outcome: BulkOutcome):
    """The ids among ``item_ids`` in projects where ``user`` holds ``capability``."""
    ids = sorted(set(item_ids))[:MAX_ITEMS]
    allowed = set(
        ReviewItem.objects.filter(
            pk__in=ids, project__in=projects_where(user, capability).values("pk")
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        if pk not in allowed:
            outcome.refused[pk] = "not yours to act on"
    return [pk for pk in ids if pk in allowed]


def items_requeue(*, user, item_ids: list[int]) -> BulkOutcome:
    """Send claimed items back to the review queue: their open claims end, nobody holds them.

    For seniors (ADJUDICATE) of each item's project. An item in review goes
    back to pending review with its claims released (history names ``user``);
    an item waiting in the queue only loses its claims; others are refused.
    """
    outcome = BulkOutcome()
    for pk in _permitted(
        user=user, capability=Capability.ADJUDICATE, item_ids=item_ids, outcome=outcome
    ):
        with transaction.atomic():
            item = ReviewItem.objects.select_for_update().get(pk=pk)
            if not item.in_queue or item.status not in (
                ItemStatus.PENDING_REVIEW,
                ItemStatus.IN_REVIEW,
            ):
                outcome.refused[pk] = f"not waiting for review ({item.status})"
                continue
            now = timezone.now()
            for claim in Assignment.objects.filter(item=item, state=AssignmentState.ACTIVE):
                claim.state = AssignmentState.RELEASED
                claim.closed_at = now
                claim._history_user = user
                claim._change_reason = f"Sent back to the queue by {user.get_username()}"
                claim.save(update_fields=["state", "closed_at"])
            if item.status == ItemStatus.IN_REVIEW:
                item_transition(
                    item=item,
                    to_status=ItemStatus.PENDING_REVIEW,
                    reason=f"Sent back to the queue by {user.get_username()}",
                    user=user,
                )
            outcome.done.append(pk)
    return outcome


def items_reopen(*, user, item_ids: list[int], reason: str) -> BulkOutcome:
    """Reopen final items for adjudication (``item_reopen``, a senior's audited override)."""
    outcome = BulkOutcome()
    if not reason.strip():
        raise DomainError("A reason is required.", detail={"reason": ["Say why you reopen them."]})
    for pk in _permitted(
        user=user, capability=Capability.ADJUDICATE, item_ids=item_ids, outcome=outcome
    ):
        item = ReviewItem.objects.get(pk=pk)
        try:
            item_reopen(item=item, user=user, reason=reason)
        except DomainError as exc:
            outcome.refused[pk] = exc.message
        except TransitionError as exc:
            outcome.refused[pk] = str(exc)
        else:
            outcome.done.append(pk)
    return outcome


def items_assign(*, user, item_ids: list[int], reviewer) -> BulkOutcome:
    """Hand items to ``reviewer`` as their claims (``assignment_assign``).

    ``user`` must adjudicate in each item's project and ``reviewer`` review there.
    """
    outcome = BulkOutcome()
    for pk in _permitted(
        user=user, capability=Capability.ADJUDICATE, item_ids=item_ids, outcome=outcome
    ):
        try:
            assignment_assign(item_id=pk, reviewer=reviewer, by=user)
        except DomainError as exc:
            outcome.refused[pk] = exc.message
        else:
            outcome.done.append(pk)
    return outcome


def items_delete(*, user, item_ids: list[int]) -> BulkOutcome:
    """Delete items, for admins of each item's project; their history keeps a "-" row.

    An item included in a dataset export is refused: exports never change.
    Its reviews, claims, checks, verdicts and adjudication cases go with it
    (each with its history).
    """
    outcome = BulkOutcome()
    for pk in _permitted(
        user=user, capability=Capability.ADMINISTER, item_ids=item_ids, outcome=outcome
    ):
        with transaction.atomic():
            item = ReviewItem.objects.select_for_update().filter(pk=pk).first()
            if item is None:
                outcome.refused[pk] = "already gone"
                continue
            if DatasetExportItem.objects.filter(item_id=pk).exists():
                outcome.refused[pk] = "part of a dataset export"
                continue
            item._history_user = user
            item._change_reason = f"Deleted by {user.get_username()} from the item list"
            try:
                with transaction.atomic():
                    # Cases point at the item's reviews (PROTECT): they go first.
                    for case in AdjudicationCase.objects.filter(item=item):
                        case._history_user = user
                        case.delete()
                    item.delete()
            except ProtectedError:
                outcome.refused[pk] = "other records still refer to it"
                continue
            outcome.done.append(pk)
    return outcome


def items_export(
    *, user, item_ids: list[int], format: str
) -> tuple[DatasetExport | None, BulkOutcome]:
    """Queue a dataset export of the chosen items (the format's usual statuses apply).

    Only items in projects where ``user`` may build exports go in; None when
    none may.
    """
    outcome = BulkOutcome()
    allowed = _permitted(
        user=user, capability=Capability.BUILD_EXPORTS, item_ids=item_ids, outcome=outcome
    )
    if not allowed:
        return None, outcome
    export = export_create(
        format=format,
        projects=list(Project.objects.filter(items__pk__in=allowed).distinct()),
        filters={"item_ids": allowed},
        name=f"{len(allowed)} chosen item(s)",
        user=user,
    )
    outcome.done.extend(allowed)
    return export, outcome
