import math

import pytest

from reviews.models import ReviewItem
from reviews.models.items import PRIORITY_AUDIT, PRIORITY_NORMAL, PRIORITY_RISK
from reviews.services.routing import audit_draw
from tests.factories import ingest, item_payload, make_project


def test_gate_mode_sends_every_surviving_item_to_review(db):
    project = make_project(mode="gate", risk_keywords=["overdose"])
    items = ingest(
        project,
        item_payload(confidence=0.99),
        item_payload(confidence=0.1),
        item_payload(confidence=None),
        item_payload(output="Risk of overdose."),
    )
    assert {item.status for item in items} == {"pending_review"}
    assert all(item.in_queue for item in items)
    assert all(item.review_reasons[0] == "gate" for item in items)
    assert items[3].priority == PRIORITY_RISK
    assert items[0].priority == PRIORITY_NORMAL


def test_monitor_mode_auto_approves_without_a_trigger(db):
    project = make_project(mode="monitor", confidence_threshold=0.7, audit_sample_rate=0.0)
    [item] = ingest(project, item_payload(confidence=0.95, output="Fine answer."))
    assert item.status == "auto_approved"
    assert item.final_output == "Fine answer."
    assert item.decided_at is not None
    assert item.in_queue is False
    assert item.is_audit is False


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"confidence": 0.69}, "low_confidence"),
        ({"output": "A LAWSUIT may follow."}, "risk_keyword:lawsuit"),
        ({"prompt": "Can I sue? lawsuit?"}, "risk_keyword:lawsuit"),
    ],
)
def test_monitor_mode_triggers_send_items_to_review(db, payload, reason):
    project = make_project(mode="monitor", confidence_threshold=0.7, risk_keywords=["lawsuit"])
    [item] = ingest(project, item_payload(**{"confidence": 0.95, **payload}))
    assert item.status == "pending_review"
    assert reason in item.review_reasons
    assert item.in_queue is True


def test_unknown_confidence_is_not_a_trigger_but_sorts_first(db):
    project = make_project(mode="monitor", confidence_threshold=0.7)
    [item] = ingest(project, item_payload(confidence=None))
    assert item.status == "auto_approved"


def test_audit_sample_rate_is_respected_within_a_statistical_bound(db):
    rate, n = 0.1, 4000
    project = make_project(mode="monitor", audit_sample_rate=rate, audit_salt="seed-42")
    items = ingest(
        project, *[item_payload(external_id=f"aud-{i}", confidence=0.99) for i in range(n)]
    )
    audited = [item for item in items if item.is_audit]
    # Binomial(n, p): mean 400, sd 19; 5 sd either side is a bound a fair draw never leaves.
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(len(audited) - n * rate) < 5 * sd
    assert all(item.status == "auto_approved" and item.in_queue for item in audited)
    assert all(item.priority == PRIORITY_AUDIT for item in audited)
    assert all(item.final_output == item.output for item in audited)
    assert not any(item.in_queue for item in items if not item.is_audit)


def test_audit_draw_is_reproducible_and_depends_on_the_salt():
    assert audit_draw("a", "x-1") == audit_draw("a", "x-1")
    assert audit_draw("a", "x-1") != audit_draw("b", "x-1")
    draws = [audit_draw("s", str(i)) for i in range(10_000)]
    assert min(draws) >= 0 and max(draws) < 1
    assert abs(sum(draws) / len(draws) - 0.5) < 0.02


def test_queue_order_is_risk_then_lowest_confidence_then_oldest(db):
    project = make_project(
        mode="monitor", confidence_threshold=0.9, risk_keywords=["fraud"], audit_sample_rate=1.0
    )
    ingest(project, item_payload(external_id="old-low", confidence=0.5))
    ingest(project, item_payload(external_id="new-low", confidence=0.5))
    ingest(project, item_payload(external_id="lower", confidence=0.2))
    ingest(project, item_payload(external_id="risky", confidence=0.8, output="Possible fraud."))
    ingest(project, item_payload(external_id="audit", confidence=0.95))
    ingest(project, item_payload(external_id="unknown", confidence=None, output="fraud?"))
    order = list(ReviewItem.objects.in_queue().values_list("external_id", flat=True))
    assert order == ["unknown", "risky", "lower", "old-low", "new-low", "audit"]
