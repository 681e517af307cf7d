"""The review budget in monitor mode: the share holds when the confidences shift."""

import random

import pytest

from reviews.models import BudgetDay, ItemStatus, ReviewItem
from reviews.services.routing import REASON_LOW_CONFIDENCE
from tests import factories

ITEMS = 10_000
HALF = ITEMS // 2
BATCH = 250


def _confidences(seed: int, first: tuple[float, float], second: tuple[float, float]):
    draw = random.Random(seed)
    return [draw.betavariate(*(first if n < HALF else second)) for n in range(ITEMS)]


def _ingest_all(project, confidences, *, model_version="v1", risky_every=0):
    for start in range(0, ITEMS, BATCH):
        payloads = []
        for n in range(start, min(start + BATCH, ITEMS)):
            prompt = f"question {n}"
            if risky_every and n % risky_every == 0:
                prompt += " about a lawsuit"
            payloads.append(
                factories.item_payload(
                    external_id=f"{model_version}-{n}",
                    prompt=prompt,
                    model_version=model_version,
                    confidence=round(confidences[n], 6),
                )
            )
        factories.ingest(project, *payloads)


def _sent_shares(project, model_version="v1"):
    sent = dict(
        ReviewItem.objects.filter(project=project, model_version=model_version).values_list(
            "external_id", "in_queue"
        )
    )
    flags = [sent[f"{model_version}-{n}"] for n in range(ITEMS)]
    return sum(flags[:HALF]) / HALF, sum(flags[HALF:]) / HALF


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [((8, 2), (2, 3)), ((2, 3), (9, 1))],
    ids=["confidence-drops", "confidence-rises"],
)
def test_share_sent_to_review_holds_on_each_side_of_a_shift(first, second):
    project = factories.make_project(
        mode="monitor", budget_share=0.10, budget_window=500, confidence_threshold=0.7
    )
    confidences = _confidences(7, first, second)
    _ingest_all(project, confidences)

    before, after = _sent_shares(project)
    assert abs(before - 0.10) <= 0.01, before
    assert abs(after - 0.10) <= 0.01, after
    # A fixed threshold of 0.7 would have sent a very different share on each side.
    fixed = [sum(c < 0.7 for c in confidences[:HALF]), sum(c < 0.7 for c in confidences[HALF:])]
    assert abs(fixed[0] - fixed[1]) / HALF > 0.3
    # And on each side it sends the least confident: what went to review sits at the
    # bottom of what was released.
    rows = ReviewItem.objects.filter(project=project).values_list(
        "external_id", "confidence", "in_queue"
    )
    by_half = {0: ([], []), 1: ([], [])}
    for external_id, confidence, queued in rows:
        half = int(int(external_id.rsplit("-", 1)[1]) >= HALF)
        by_half[half][0 if queued else 1].append(confidence)
    for sent, released in by_half.values():
        assert sorted(sent)[len(sent) // 2] < sorted(released)[len(released) // 10]
    print(f"budget share 10%: before the shift {before:.2%}, after {after:.2%}")


@pytest.mark.django_db
def test_each_model_version_keeps_its_own_distribution():
    """Two versions, one far more confident: each sends its own least confident 10%."""
    project = factories.make_project(mode="monitor", budget_share=0.10, budget_window=300)
    _ingest_all(project, _confidences(3, (9, 1), (9, 1)), model_version="sure")
    _ingest_all(project, _confidences(4, (2, 5), (2, 5)), model_version="unsure")
    for version in ("sure", "unsure"):
        before, after = _sent_shares(project, version)
        assert abs(before - 0.10) <= 0.01, (version, before)
        assert abs(after - 0.10) <= 0.01, (version, after)


@pytest.mark.django_db
def test_risk_triggers_go_first_and_the_daily_capacity_caps_the_rest():
    project = factories.make_project(
        mode="monitor",
        risk_keywords=["lawsuit"],
        budget_share=0.5,
        budget_daily_capacity=300,
    )
    payloads = [
        factories.item_payload(
            external_id=f"c-{n}",
            prompt=f"q {n}" + (" lawsuit" if n % 10 == 0 else ""),
            confidence=(n % 97) / 97,
        )
        for n in range(1000)
    ]
    for start in range(0, 1000, 100):
        factories.ingest(project, *payloads[start : start + 100])

    queued = ReviewItem.objects.filter(project=project, in_queue=True)
    risky = queued.filter(prompt__contains="lawsuit").count()
    assert risky == 100  # every risk trigger, even once the capacity is used
    # A riskless item went to review only while fewer than 300 had gone that day.
    order = list(queued.order_by("id").values_list("prompt", flat=True))
    last_budget = max(n for n, prompt in enumerate(order) if "lawsuit" not in prompt)
    assert last_budget == 299
    day = BudgetDay.objects.get(project=project)
    assert (day.considered, day.sent_risk) == (1000, 100)
    assert day.sent_budget == 300 - sum("lawsuit" in prompt for prompt in order[:300])
    # The share (half of all 1,000, risk included) picked about 400 riskless items;
    # what the capacity did not fit was left unreviewed.
    assert day.sent_budget + day.over_capacity == pytest.approx(400, abs=20)
    budget_sent = queued.exclude(prompt__contains="lawsuit")
    assert all(REASON_LOW_CONFIDENCE in item.review_reasons for item in budget_sent)
    assert not ReviewItem.objects.filter(
        project=project, status=ItemStatus.AUTO_APPROVED, in_queue=True
    ).exists()


@pytest.mark.django_db
def test_without_a_budget_the_fixed_threshold_decides(monitor_project):
    items = factories.ingest(
        monitor_project,
        factories.item_payload(confidence=0.2),
        factories.item_payload(confidence=0.95),
    )
    assert [item.in_queue for item in items] == [True, False]
    assert not BudgetDay.objects.exists()
