"""Browser test: a reviewer marks a tool call of a 20-turn agent trace wrong, then decides."""

import re

import pytest
from playwright.sync_api import expect

from reviews.models import ItemStatus, StepVerdict
from tests import factories
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__stepXss = 1</script><img src=x onerror='window.__stepXss = 2'>"


@pytest.mark.parametrize("viewport", [(1024, 768), (1440, 900)])
def test_a_step_is_marked_wrong_through_the_page(
    live_server, browser, screenshot, django_user_model, viewport
):
    project = factories.make_project(name="Agents", slug="agents")
    # No system turn, six rounds of two tool calls: 20 turns, hostile text in each.
    item = factories.ingest_transcript(project, rounds=6, system=False, text=XSS)
    assert len(item.messages) == 20
    user = django_user_model.objects.create_user("rita", password="rita-pass-1", is_staff=True)
    factories.add_member(project, user, "reviewer")
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        login(page, live_server.url, "rita", "rita-pass-1")
        page.locator("tr[data-project=agents]").get_by_role(
            "button", name="Start reviewing"
        ).click()
        page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))

        turns = page.locator(".ws-transcript > li")
        expect(turns).to_have_count(20)
        expect(page.locator('[aria-current="step"]')).to_have_attribute("id", "ws-step-20")
        expect(page.locator("#ws-step-2 .ws-tool-name").first).to_have_text("search_drugs")
        # The decision bar is on the first screen whatever the length of the trace.
        expect(page.locator("#ws-approve")).to_be_in_viewport()

        # A correction under way survives the reload that saving a mark makes.
        page.keyboard.press("e")
        editor = page.locator("#ws-editor")
        expect(editor).to_be_focused()
        edited = editor.input_value().replace("At most 4 g per day", "At most 3 g per day")
        editor.fill(edited)
        page.select_option("#ws-reason", "factual_error")
        page.check("input[name=severity][value=minor]")

        page.locator("#ws-step-mark-8").scroll_into_view_if_needed()
        page.get_by_text("Mark step 8 wrong\u2026").click()
        page.get_by_label("Which part of step 8").select_option("call_2_dose")
        page.get_by_label("Reason for step 8").select_option("wrong_entity")
        page.get_by_role("group", name="Severity of step 8").get_by_label("Major").check()
        page.get_by_label("Note on step 8").fill("Asked for the adult table; patient is 8.")
        page.get_by_role("button", name="Save the mark on step 8").click()

        page.wait_for_url(re.compile(r"/workspace/review/\d+/#ws-step-8$"))
        expect(page.locator(".messagelist")).to_contain_text("Marked step 8 wrong.")
        marked = page.locator("#ws-step-8 .ws-step-markline")
        expect(marked).to_contain_text("tool call call_2_dose")
        expect(marked).to_contain_text("wrong_entity, major")
        expect(page.locator("#ws-step-8")).to_have_class(re.compile("ws-turn-marked"))
        screenshot(page, f"step-marked-{width}x{height}")
        assert page.evaluate("window.__stepXss") is None

        expect(page.locator("#ws-editor")).to_be_visible()
        expect(page.locator("#ws-editor")).to_have_value(edited)
        expect(page.locator("#ws-reason")).to_have_value("factual_error")
        expect(page.locator("input[name=severity][value=minor]")).to_be_checked()
        expect(page.locator("#ws-diff ins")).to_have_text("3")

        verdict = StepVerdict.objects.get()
        assert (verdict.step, verdict.part, verdict.severity) == (8, "call_2_dose", "major")

        # Then the decision itself: approve; the mark joins the review.
        page.locator("#ws-cancel").click()
        page.locator("#ws-approve").click()
        # The browser keeps the step's #fragment through the redirect.
        page.wait_for_url(re.compile(r"/workspace/(#ws-step-8)?$"))
        expect(page.locator(".messagelist")).to_contain_text("The queue is empty for now.")
        item.refresh_from_db()
        assert item.status == ItemStatus.APPROVED
        verdict.refresh_from_db()
        assert verdict.review is not None and verdict.review.item_id == item.pk
    finally:
        context.close()
