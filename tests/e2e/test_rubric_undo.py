"""Browser: a rubric of three criteria scored with the keyboard only, severity on keys, undo."""

import re

import pytest
from playwright.sync_api import expect

from reviews.models import Assignment, AssignmentState, ItemStatus, Review, RubricCriterion
from tests import factories
from tests.e2e.conftest import login
from tests.e2e.test_workspace import member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def rubric(project) -> None:
    for order, fields in enumerate(
        (
            {
                "key": "factuality",
                "label": "Factuality",
                "description": "Every claim is backed by the context.",
                "scale_min": 1,
                "scale_max": 5,
                "anchors": {"1": "Wrong", "5": "Right"},
            },
            {
                "key": "register",
                "label": "Register",
                "kind": "categorical",
                "options": ["formal", "neutral", "casual"],
            },
            {"key": "safe", "label": "Safe", "kind": "boolean"},
        )
    ):
        criterion = RubricCriterion(project=project, order=order, **fields)
        criterion.full_clean()
        criterion.save()


def test_rubric_scored_by_keyboard_then_the_decision_undone(
    live_server, new_page, screenshot, django_user_model
):
    project = factories.make_project(name="Rubric answers", slug="rubric")
    rubric(project)
    first, second = factories.ingest(
        project, factories.item_payload(confidence=0.2), factories.item_payload(confidence=0.9)
    )
    rita = member(django_user_model, project, "rita")
    page = new_page()
    login(page, live_server.url, "rita", "rita-pass-1")
    page.locator("tr[data-project=rubric]").get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator("h1")).to_contain_text(first.external_id)

    # The help lists the criteria with their descriptions and keys.
    page.keyboard.press("?")
    expect(page.locator("#ws-help-rubric")).to_contain_text("Every claim is backed by the context.")
    page.keyboard.press("Escape")

    # c focuses the first criterion; each digit scores and moves on to the next.
    page.keyboard.press("c")
    expect(page.locator("#ws-criterion-factuality")).to_be_focused()
    page.keyboard.press("4")
    expect(page.locator("#ws-criterion-register")).to_be_focused()
    page.keyboard.press("2")
    expect(page.locator("#ws-criterion-safe")).to_be_focused()
    page.keyboard.press("0")
    expect(page.locator("input[name=rubric_factuality][value='4']")).to_be_checked()
    expect(page.locator("input[name=rubric_register][value=neutral]")).to_be_checked()
    expect(page.locator("input[name=rubric_safe][value=no]")).to_be_checked()
    # Tab order runs criterion to criterion too: Shift+Tab goes back one.
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#ws-criterion-register")).to_be_focused()
    page.keyboard.press("Backspace")
    expect(page.locator("input[name=rubric_register]:checked")).to_have_count(0)
    page.keyboard.press("3")
    expect(page.locator("input[name=rubric_register][value=casual]")).to_be_checked()

    # Reject: reason by its number, severity with s then a digit, submit with Ctrl+Enter.
    page.keyboard.press("r")
    page.keyboard.press("Escape")  # leave the reason list: digits pick reasons again
    page.keyboard.press("2")
    expect(page.locator("#ws-reason")).to_have_value("hallucination")
    expect(page.locator("#ws-reason option:checked")).to_have_text("2. Hallucination")
    page.keyboard.press("s")
    expect(page.locator("#ws-severity-hint")).to_be_visible()
    page.keyboard.press("3")
    expect(page.locator("input[name=severity][value=critical]")).to_be_checked()
    screenshot(page, "review-page-rubric")
    page.keyboard.press("Control+Enter")

    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator("h1")).to_contain_text(second.external_id)
    review = Review.objects.get(reviewer=rita)
    assert review.rubric_scores == {"factuality": 4, "register": "casual", "safe": False}
    assert (review.verdict, review.reason_code, review.severity) == (
        "reject",
        "hallucination",
        "critical",
    )
    first.refresh_from_db()
    assert first.status == ItemStatus.REJECTED

    # Undo: offered on the next page, u presses it, the first item is back with its claim.
    expect(page.locator("#ws-undo")).to_be_visible()
    expect(page.locator("#ws-undo")).to_contain_text(first.external_id)
    page.keyboard.press("u")
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator(".messagelist")).to_contain_text("Undone")
    expect(page.locator("h1")).to_contain_text(first.external_id)
    expect(page.locator("#ws-undo")).to_have_count(0)
    assert not Review.objects.filter(reviewer=rita).exists()
    first.refresh_from_db()
    assert first.status == ItemStatus.IN_REVIEW and first.final_verdict == ""
    active = Assignment.objects.get(reviewer=rita, state=AssignmentState.ACTIVE)
    assert active.item_id == first.pk

    # A submit without the required scores is refused, naming them; nothing recorded.
    page.keyboard.press("a")
    page.wait_for_load_state()
    expect(page.locator("#ws-criterion-factuality")).to_contain_text("it is required")
    assert not Review.objects.filter(reviewer=rita).exists()
