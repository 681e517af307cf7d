"""The dashboard shows what the review budget did: the realised share sent to review
and what it left unreviewed, per project over the period, from the day counters."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviews.models import BudgetDay, ItemStatus, ReviewItem
from tests import factories

pytestmark = pytest.mark.django_db

URL = reverse("admin:reviews_dashboard")


def _ingest(project, count: int, *, seed: int) -> None:
    draw = random.Random(seed)
    payloads = [
        factories.item_payload(
            prompt=f"question {seed}-{n}" + (" lawsuit" if n % 25 == 0 else ""),
            confidence=round(draw.random(), 6),
        )
        for n in range(count)
    ]
    for start in range(0, count, 100):
        factories.ingest(project, *payloads[start : start + 100])


@pytest.fixture
def budgeted(db):
    return factories.make_project(
        name="Contract Q&A",
        slug="contracts",
        mode="monitor",
        risk_keywords=["lawsuit"],
        confidence_threshold=0.5,
        budget_share=0.2,
        budget_window=100,
        budget_daily_capacity=60,
    )


def test_dashboard_shows_the_realised_share_and_what_was_left_unreviewed(
    client, admin_user, budgeted
):
    plain = factories.make_project(name="No budget", slug="plain", mode="monitor")
    factories.ingest(plain)
    _ingest(budgeted, 400, seed=1)
    client.force_login(admin_user)
    response = client.get(URL)
    assert response.status_code == 200
    (row,) = response.context["data"].budgets  # projects without a budget are not listed
    assert row.project == budgeted
    queued = ReviewItem.objects.filter(project=budgeted, status=ItemStatus.PENDING_REVIEW)
    released = ReviewItem.objects.filter(project=budgeted, status=ItemStatus.AUTO_APPROVED)
    assert row.considered == 400
    assert row.sent == queued.count() and released.count() == 400 - row.sent
    assert row.sent_risk == queued.filter(prompt__contains="lawsuit").count() == 16
    # The capacity bound the share: 20% of 400 chosen (risk included), 60 a day fit.
    assert row.sent_risk + row.sent_budget + row.over_capacity == pytest.approx(80, abs=10)
    assert row.sent_risk + row.sent_budget <= 60 + 16 and row.over_capacity > 0
    below = released.filter(confidence__lt=budgeted.confidence_threshold).count()
    assert 0 < row.released_below_threshold <= below
    assert row.unreviewed == row.over_capacity + row.released_below_threshold
    assert row.share.rate == pytest.approx(queued.count() / 400)
    html = response.content.decode()
    table = html.split('id="budget-table"')[1].split("</table>")[0]
    assert "Contract Q&amp;A" in table and "No budget" not in table
    assert f">{row.unreviewed}<" in table


def test_budget_figures_cover_the_period_only(client, admin_user, budgeted):
    _ingest(budgeted, 100, seed=2)
    today = BudgetDay.objects.get(project=budgeted)
    BudgetDay.objects.create(
        project=budgeted, day=today.day - timedelta(days=60), considered=1000, sent_budget=500
    )
    client.force_login(admin_user)
    (row,) = client.get(URL, {"days": 30}).context["data"].budgets
    assert row.considered == 100


def test_budget_figures_cost_the_same_queries_whatever_the_traffic(
    client, admin_user, budgeted, django_assert_max_num_queries
):
    _ingest(budgeted, 100, seed=3)
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    _ingest(budgeted, 400, seed=4)
    day = BudgetDay.objects.get(project=budgeted)
    for ago in range(1, 20):
        BudgetDay.objects.create(
            project=budgeted, day=day.day - timedelta(days=ago), considered=10, sent_budget=2
        )
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(URL)
    (row,) = response.context["data"].budgets
    assert row.considered == 500 + 19 * 10
