"""One statement for a row and its history row writes what ``save()`` and
django-simple-history write in two."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.history_sql import foreign_receivers, insert_with_history, update_with_history
from reviews.models import Assignment, ItemStatus, Review, ReviewItem
from tests.factories import ingest, item_payload, make_project

# What the history row of a write records beyond the model's own columns.
BOOKKEEPING = ("history_id", "history_date")


def _history_rows(model, pk):
    rows = list(model.history.filter(id=pk).order_by("history_id").values())
    return [{k: v for k, v in row.items() if k not in BOOKKEEPING} for row in rows]


def _claim(item, user, **extra):
    now = timezone.now()
    assignment = Assignment(
        item=item, reviewer=user, claimed_at=now, lease_expires_at=now + timedelta(minutes=5)
    )
    assignment._history_user = user
    assignment._change_reason = "Claimed from the queue"
    return assignment


def test_no_receiver_but_simple_history_listens_to_the_models_written_so():
    # pre_save/post_save are not sent by the one-statement writes: nothing else may need them.
    for model in (Review, Assignment, ReviewItem):
        assert foreign_receivers(model) == []


def test_insert_and_update_write_the_rows_save_writes(db):
    user = get_user_model().objects.create_user("hist-sql")
    first, second = ingest(
        make_project(slug="hsql"), item_payload(external_id="s-1"), item_payload(external_id="s-2")
    )
    saved, combined = _claim(first, user), _claim(second, user)
    saved.save()
    with CaptureQueriesContext(connection) as queries:
        insert_with_history(combined)
    assert len(queries) == 1
    assert combined.pk and not combined._state.adding
    stored = Assignment.objects.get(pk=combined.pk)
    assert (stored.item_id, stored.reviewer_id, stored.state) == (second.pk, user.pk, "active")

    for assignment in (saved, combined):
        assignment.state, assignment.closed_at = "submitted", timezone.now()
        assignment._change_reason = "Review submitted"
    saved.save(update_fields=["state", "closed_at"])
    with CaptureQueriesContext(connection) as queries:
        update_with_history(combined, ["state", "closed_at"])
    assert len(queries) == 1
    assert Assignment.objects.get(pk=combined.pk).state == "submitted"

    def comparable(assignment):
        rows = _history_rows(Assignment, assignment.pk)
        for row in rows:
            row.pop("id"), row.pop("item_id"), row.pop("claimed_at"), row.pop("lease_expires_at")
            row.pop("closed_at")
        return rows

    assert comparable(combined) == comparable(saved)
    assert [row["history_type"] for row in _history_rows(Assignment, combined.pk)] == ["+", "~"]
    assert _history_rows(Assignment, combined.pk)[1]["history_user_id"] == user.pk


def test_an_item_update_keeps_auto_now_and_every_history_column(db):
    user = get_user_model().objects.create_user("hist-sql-item")
    first, second = ingest(
        make_project(slug="hsql2"), item_payload(external_id="t-1"), item_payload(external_id="t-2")
    )
    for item in (first, second):
        item.status = ItemStatus.IN_REVIEW
        item._change_reason, item._history_user = "Claimed by hist-sql-item", user
    before = second.updated_at
    first.save(update_fields=["status", "updated_at"])
    update_with_history(second, ["status", "updated_at"])
    assert second.updated_at > before  # auto_now, as save() stamps it
    stored = ReviewItem.objects.get(pk=second.pk)
    assert (stored.status, stored.updated_at) == (ItemStatus.IN_REVIEW, second.updated_at)

    def comparable(item):
        rows = _history_rows(ReviewItem, item.pk)
        for row in rows:
            for name in ("id", "external_id", "payload_hash", "created_at", "updated_at"):
                row.pop(name, None)
        return rows

    assert comparable(second) == comparable(first)
    assert _history_rows(ReviewItem, second.pk)[-1]["updated_at"] == second.updated_at


def test_an_update_of_a_missing_row_writes_nothing_and_says_so(db):
    (item,) = ingest(make_project(slug="hsql3"), item_payload(external_id="u-1"))
    ghost = ReviewItem.objects.get(pk=item.pk)
    ReviewItem.objects.filter(pk=item.pk).delete()
    written = ReviewItem.history.filter(id=item.pk).count()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        update_with_history(ghost, ["status"])
    assert ReviewItem.history.filter(id=item.pk).count() == written
