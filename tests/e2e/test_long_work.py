"""The review page with long, multi-step work: a 20-turn agent trace ending in 5,000 words.

At the two screen sizes reviewers use most, the decision bar is on the first
screen, an edit near the end of the answer shows in the diff without scrolling
the document, markdown renders, and nothing any turn says runs as script.
"""

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from reviews.models import ReviewItem
from reviews.services.accounts import user_roles_sync
from reviews.services.projects import api_key_create
from tests import factories
from tests.e2e.conftest import login
from tests.long_work import TOOLS, agent_messages

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORTS = [{"width": 1024, "height": 768}, {"width": 1440, "height": 900}]


def in_view(page, selector: str) -> bool:
    """True when the element's box lies inside the window as it is (no scrolling)."""
    return page.locator(selector).first.evaluate(
        """element => {
            const box = element.getBoundingClientRect();
            return box.height > 0 && box.top >= 0 && box.left >= 0
                && box.bottom <= window.innerHeight && box.right <= window.innerWidth;
        }"""
    )


@pytest.fixture
def long_trace(django_user_model):
    project = factories.make_project(name="Agents", slug="agents")
    key = api_key_create(project=project, name="app")[1]
    response = Client(headers={"X-API-Key": key}).post(
        "/api/v1/items/",
        {
            "external_id": "trace-20",
            "messages": agent_messages(turns=20, answer_words=5_000),
            "tools": TOOLS,
            "model_name": "acme-agent",
            "model_version": "2026-12-01",
            "confidence": 0.4,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content[:300]
    user = django_user_model.objects.create_user("rita", password="rita-pass-1", is_staff=True)
    factories.add_member(project, user, "reviewer")
    user_roles_sync(user=user)
    return ReviewItem.objects.get(external_id="trace-20")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
def test_long_trace_is_reviewable_on_one_screen(live_server, browser, long_trace, viewport):
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        login(page, live_server.url, "rita", "rita-pass-1")
        page.get_by_role("button", name="Start reviewing").click()
        page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
        assert len(long_trace.messages) == 20  # stored whole; the last is under review

        # The decision bar is on the first screen, and stays there.
        assert in_view(page, "#review-form .ws-actions")
        assert in_view(page, "#ws-approve")

        # Markdown renders (headings, emphasis), escaped; no turn's <script> ran.
        output = page.locator("#ws-output-view")
        expect(output.locator(".ws-md h1")).to_have_text("Dosing summary")
        expect(output.locator(".ws-md strong").first).to_have_text("Adults:")
        assert page.evaluate("window.__hitl_pwned") is None
        expect(page.locator("#ws-prompt")).to_contain_text("<script>window.__hitl_pwned")
        assert page.locator("script:not([src])").count() <= 2  # json_script data only
        page.keyboard.press("m")
        expect(output.locator(".ws-raw").first).to_be_visible()
        expect(output.locator(".ws-raw").first).to_contain_text("# Dosing summary")
        page.keyboard.press("m")

        # `e`, then an edit in the last sentence: the diff shows it at once.
        page.keyboard.press("e")
        editor = page.locator("#ws-editor")
        expect(editor).to_be_focused()
        page.keyboard.press("Control+End")
        for _ in range(4):
            page.keyboard.press("Backspace")
        page.keyboard.type("2 g.")
        assert editor.input_value().endswith("the dose is 2 g.")
        diff = page.locator("#ws-diff")
        expect(diff.locator("ins")).to_have_text("2")
        expect(diff.locator("del")).to_have_text("4")
        expect(page.locator("#ws-diff-stats")).to_have_text("(+1 / \u22121 words)")
        assert page.evaluate("window.scrollY") == 0
        assert in_view(page, "#ws-diff ins"), "the change is not on screen"
        assert in_view(page, "#ws-submit-correct")
        page.screenshot(path=f"/tmp/long-work-{viewport['width']}.png")
    finally:
        context.close()
