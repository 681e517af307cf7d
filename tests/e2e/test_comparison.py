"""Browser: a comparison ingested, two reviewers prefer different candidates with the
keyboard, a senior decides the case."""

import re

import pytest
from playwright.sync_api import expect

from adjudication.models import AdjudicationCase, CaseStatus
from reviews.models import ItemStatus, Review, ReviewItem
from reviews.services.accounts import user_roles_sync
from tests import factories
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODELS = ("model-w", "model-x", "model-y", "model-z", "v1.0", "v2.0", "v3.0", "v4.0")


def member(django_user_model, project, username: str, role: str = "reviewer"):
    user = django_user_model.objects.create_user(
        username, password=f"{username}-pass-1", is_staff=True
    )
    factories.add_member(project, user, role)
    user_roles_sync(user=user)
    return user


def shown_order(page) -> list[int]:
    return [
        int(pk)
        for pk in page.locator(".ws-candidate").evaluate_all(
            "nodes => nodes.map((n) => n.dataset.candidate)"
        )
    ]


def prefer_by_keyboard(page, base_url: str, username: str, *, avoid: int | None, shot) -> int:
    """Log in, start reviewing, press the key of the first candidate not ``avoid``."""
    login(page, base_url, username, f"{username}-pass-1")
    page.locator("tr[data-project=pairs]").get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator(".ws-candidate")).to_have_count(4)
    html = page.content()
    assert not any(name in html for name in MODELS), (
        "a model name is in the page before the decision"
    )
    order = shown_order(page)
    shot(page, f"comparison-review-{username}")
    page.reload()  # the order is stored on the claim: a reload shows the same one
    assert shown_order(page) == order
    index = next(i for i, pk in enumerate(order) if pk != avoid)
    page.keyboard.press("?")
    expect(page.locator("#ws-help")).to_contain_text("Tie")
    page.keyboard.press("Escape")
    page.keyboard.press(str(index + 1))
    page.wait_for_url("**/workspace/")
    expect(page.locator(".messagelist")).to_contain_text(f"you preferred {'ABCD'[index]}")
    # Once decided, the confirmation names the models behind the labels.
    expect(page.locator(".messagelist")).to_contain_text("model-w v1.0")
    return order[index]


def test_two_reviewers_prefer_different_candidates_and_a_senior_decides(
    live_server, new_page, screenshot, django_user_model
):
    project = factories.make_project(name="Pairs", slug="pairs", reviews_required=2)
    (item,) = factories.ingest(project, factories.comparison_payload(4))
    member(django_user_model, project, "dora")
    member(django_user_model, project, "dave")
    member(django_user_model, project, "sena", role="senior")

    dora_page = new_page()
    dora_pick = prefer_by_keyboard(dora_page, live_server.url, "dora", avoid=None, shot=screenshot)
    dave_page = new_page()
    dave_pick = prefer_by_keyboard(
        dave_page, live_server.url, "dave", avoid=dora_pick, shot=screenshot
    )
    assert dora_pick != dave_pick

    first, second = Review.objects.filter(item=item).order_by("created_at", "pk")
    assert (first.winner_id, second.winner_id) == (dora_pick, dave_pick)
    assert sorted(first.candidate_order) == sorted(second.candidate_order)
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    case = AdjudicationCase.objects.get(item=item)

    senior = new_page()
    login(senior, live_server.url, "sena", "sena-pass-1")
    senior.goto(f"{live_server.url}/admin/adjudication/adjudicationcase/queue/")
    senior.locator("#adj-claim-next").click()
    senior.wait_for_url(re.compile(rf"/{case.pk}/work/$"))
    expect(senior.locator("#adj-review-a h2")).to_contain_text("is best")
    expect(senior.locator("#adj-review-b h2")).to_contain_text("is best")
    expect(senior.locator("#adj-candidates .adj-choice-chip")).to_have_count(2)
    screenshot(senior, "comparison-case")
    senior.keyboard.press("2")  # uphold review B
    senior.locator("#id_rationale").fill("B's choice answers the question; A's hedges.")
    senior.keyboard.press("Control+Enter")
    expect(senior.locator("#adj-final-preference")).to_be_visible()

    item = ReviewItem.objects.get(pk=item.pk)
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.upheld == "b"
    assert (item.status, item.adjudicated, item.final_candidate_id) == (
        ItemStatus.APPROVED,
        True,
        dave_pick,
    )
    assert item.final_output == item.candidates.get(pk=dave_pick).output
