import json

import pytest
from django.db import transaction

from reviews.models import ReviewItem
from reviews.services.decisions import item_finalize
from reviews.services.projects import api_key_create, api_key_revoke
from reviews.services.transitions import TransitionError, item_transition
from tests.factories import ingest, item_payload, make_project


def claim_and_correct(item, *, user, reason: str) -> None:
    """Take ``item`` into review and correct its output to "Better."."""
    with transaction.atomic():
        locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
        item_transition(item=locked, to_status="in_review", reason="claimed", user=user)
        item_finalize(
            item=locked,
            verdict="correct",
            corrected_output="Better.",
            reason_code="factual_error",
            severity="major",
            user=user,
            reason=reason,
        )


def test_ingest_writes_one_history_row_with_the_routing_reason(db):
    project = make_project(mode="gate")
    [item] = ingest(project, item_payload(confidence=0.4))
    [row] = item.history.all()
    assert row.history_type == "+"
    assert row.status == "pending_review"
    assert row.history_change_reason.startswith("Ingested; checks passed; routed to pending_review")


def test_api_ingest_names_the_key_in_history(client_api):
    response = client_api.post(
        "/api/v1/items/", data=json.dumps(item_payload()), content_type="application/json"
    )
    row = ReviewItem.history.get(id=response.json()["id"])
    assert row.history_user is None
    assert "via API key" in row.history_change_reason


def test_status_changes_write_history_with_user_and_reason(db, admin_user):
    project = make_project(mode="gate")
    [item] = ingest(project)
    claim_and_correct(item, user=admin_user, reason="factual_error: wrong dose")
    rows = list(item.history.order_by("history_id"))
    assert [r.status for r in rows] == ["pending_review", "in_review", "corrected"]
    assert rows[-1].history_user == admin_user
    assert rows[-1].history_change_reason == "factual_error: wrong dose"
    assert rows[-1].final_output == "Better."
    item.refresh_from_db()
    assert item.decided_at is not None and item.in_queue is False


def test_state_machine_refuses_illegal_transitions(db):
    project = make_project(mode="monitor", audit_sample_rate=0.0)
    [item] = ingest(project, item_payload(confidence=0.99))
    assert item.status == "auto_approved"
    with transaction.atomic():
        try:
            item_transition(item=item, to_status="pending_review", reason="nope")
        except TransitionError as exc:
            assert "auto_approved to pending_review" in str(exc)
        else:
            raise AssertionError("a final item went back to review")
    item.refresh_from_db()
    assert item.status == "auto_approved"


@pytest.mark.django_db(transaction=True)
def test_transition_outside_a_transaction_is_refused():
    [item] = ingest(make_project())
    try:
        item_transition(item=item, to_status="in_review", reason="x")
    except TransitionError:
        pass
    else:
        raise AssertionError("transition ran outside a transaction")


def test_project_and_key_changes_are_audited(db, admin_user):
    project = make_project()
    project.mode = "monitor"
    project._change_reason = "switch to monitor"
    project.save()
    assert [r.mode for r in project.history.order_by("history_id")] == ["gate", "monitor"]
    key, _ = api_key_create(project=project, name="k", user=admin_user)
    api_key_revoke(key=key, user=admin_user)
    rows = list(key.history.order_by("history_id"))
    assert [r.history_change_reason for r in rows] == ["API key created", "API key revoked"]
    assert rows[-1].history_user == admin_user
    assert not hasattr(rows[-1], "hashed_key")


def test_history_rows_carry_decisions_not_another_copy_of_the_submission(db, admin_user):
    project = make_project(mode="gate")
    [item] = ingest(project, item_payload(context=[{"text": "A long retrieved document."}]))
    claim_and_correct(item, user=admin_user, reason="fixed")
    columns = {f.name for f in ReviewItem.history.model._meta.concrete_fields}
    assert not columns & {"prompt", "messages", "output", "context", "metadata"}
    first, *_, latest = item.history.order_by("history_id")
    assert (first.status, latest.status, latest.final_output) == (
        "pending_review",
        "corrected",
        "Better.",
    )
    # simple-history fills the left-out fields from the item when rebuilding a version.
    assert first.instance.prompt == item.prompt
    assert first.instance.context == [{"text": "A long retrieved document."}]
