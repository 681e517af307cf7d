import re

import pytest
from playwright.sync_api import expect

from reviews.models import AssignmentState, ItemStatus, Review, ReviewItem
from reviews.services.accounts import user_roles_sync
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def member(django_user_model, project, username: str):
    user = django_user_model.objects.create_user(
        username, password=f"{username}-pass-1", is_staff=True
    )
    factories.add_member(project, user, "reviewer")
    user_roles_sync(user=user)
    return user


def test_reviewer_claims_corrects_with_diff_then_approves_by_keyboard(
    live_server, new_page, screenshot, django_user_model
):
    project = factories.make_project(name="Clinical answers", slug="clinical")
    first, second, third = factories.ingest(
        project,
        factories.item_payload(
            output="Adults may take up to 8 g of paracetamol per day.",
            confidence=0.2,
            context=[{"title": "Formulary", "source": "bnf.pdf", "text": "Max 4 g in 24 h."}],
            messages=[{"role": "system", "content": "You are a careful clinician."}],
        ),
        factories.item_payload(output='{"dose_g": 4, "note": "<b>adults</b>"}', confidence=0.5),
        factories.item_payload(confidence=0.9),
    )
    rita = member(django_user_model, project, "rita")
    page = new_page()
    login(page, live_server.url, "rita", "rita-pass-1")
    row = page.locator("tr[data-project=clinical]")
    expect(row.locator(".waiting")).to_have_text("3")
    row.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator("h1")).to_contain_text(first.external_id)
    expect(page.locator("#ws-context")).to_contain_text("Max 4 g in 24 h.")
    expect(page.locator("#ws-prompt")).to_contain_text("You are a careful clinician.")
    screenshot(page, "review-page")

    # Correct: the editor opens prefilled, the diff follows the typing.
    page.keyboard.press("e")
    editor = page.locator("#ws-editor")
    expect(editor).to_be_focused()
    expect(editor).to_have_value(first.output)
    editor.fill("Adults may take up to 4 g of paracetamol per day.")
    expect(page.locator("#ws-diff del")).to_have_text("8")
    expect(page.locator("#ws-diff ins")).to_have_text("4")
    expect(page.locator("#ws-diff-stats")).to_have_text("(+1 / \u22121 words)")
    page.select_option("#ws-reason", "factual_error")
    page.check("input[name=severity][value=critical]")
    screenshot(page, "review-page-correcting")
    page.locator("#ws-note").fill("Formulary says 4 g.")
    page.keyboard.press("Control+Enter")

    # Submit-and-next: the next item opens at once.
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator(".messagelist")).to_contain_text("Corrected")
    expect(page.locator("h1")).to_contain_text(second.external_id)
    expect(page.locator("#ws-output")).to_contain_text("(JSON, pretty-printed)")
    expect(page.locator("#ws-output pre")).to_contain_text('"note": "<b>adults</b>"')
    screenshot(page, "review-page-json")

    # Help, then approve with the keyboard.
    page.keyboard.press("?")
    expect(page.locator("#ws-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#ws-help")).to_be_hidden()
    page.keyboard.press("a")
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator("h1")).to_contain_text(third.external_id)
    page.keyboard.press("n")  # skip the last one
    page.wait_for_url("**/workspace/")
    expect(page.locator(".messagelist")).to_contain_text("The queue is empty for now.")

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ItemStatus.CORRECTED
    assert first.final_output == "Adults may take up to 4 g of paracetamol per day."
    correction = Review.objects.get(item=first)
    assert (correction.reason_code, correction.severity) == ("factual_error", "critical")
    assert list(correction.triplets.values_list("old_value", "new_value")) == [("8", "4")]
    assert second.status == ItemStatus.APPROVED
    assert Review.objects.filter(reviewer=rita).count() == 2
    assert third.assignments.get().state == AssignmentState.SKIPPED


def test_reject_needs_a_reason_and_keeps_the_input(live_server, new_page, django_user_model):
    project = factories.make_project(name="Clinical answers", slug="clinical")
    (item,) = factories.ingest(project)
    member(django_user_model, project, "rita")
    page = new_page()
    login(page, live_server.url, "rita", "rita-pass-1")
    page.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    page.keyboard.press("r")
    expect(page.locator("#ws-reason")).to_be_focused()
    page.locator("#ws-note").fill("Unsupported claim")
    page.locator("#ws-submit-reject").click()
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator("#ws-panel")).to_contain_text("Choose a reason.")
    expect(page.locator("#ws-note")).to_have_value("Unsupported claim")
    assert not Review.objects.exists()
    page.locator("#ws-reason").focus()
    page.keyboard.press("Escape")  # leave the select: shortcuts work again, the form stays
    expect(page.locator("#ws-panel")).to_be_visible()
    page.keyboard.press("2")  # the second reason of the taxonomy
    page.check("input[name=severity][value=major]")
    page.locator("#ws-submit-reject").click()
    page.wait_for_url("**/workspace/")
    item.refresh_from_db()
    assert item.status == ItemStatus.REJECTED
    assert Review.objects.get().reason_code == project.reason_codes[1]


def test_second_reviewer_cannot_see_the_first_decision(
    live_server, new_page, screenshot, django_user_model
):
    project = factories.make_project(name="Drug safety", slug="drug-safety", reviews_required=2)
    (item,) = factories.ingest(project)
    dora = member(django_user_model, project, "dora")
    member(django_user_model, project, "dave")
    first = assignment_claim_next(reviewer=dora, project=project)
    review_submit(
        assignment_id=first.pk,
        reviewer=dora,
        data=ReviewInput(
            verdict="reject", reason_code="hallucination", severity="major", note="Invented study"
        ),
    )
    page = new_page()
    login(page, live_server.url, "dave", "dave-pass-1")
    page.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator("h1")).to_contain_text(item.external_id)
    assert "Invented study" not in page.content()
    assert "dora" not in page.content()
    screenshot(page, "review-page-second-reviewer")
    page.goto(f"{live_server.url}/admin/reviews/reviewitem/{item.pk}/timeline/")
    expect(page.locator("#ws-timeline")).to_contain_text("Hidden until every required review")
    screenshot(page, "timeline-blind")
    assert "Invented study" not in page.content()
    assert "hallucination" not in page.content()
    history = page.goto(f"{live_server.url}/admin/reviews/reviewitem/{item.pk}/history/")
    assert history.status == 403  # an item's raw history is its project admins'
    assert "hallucination" not in page.content()
    assert "Invented study" not in page.content()


def test_a_reviewer_of_another_project_sees_nothing_of_this_one(
    live_server, new_page, django_user_model
):
    project = factories.make_project(name="Clinical answers", slug="clinical")
    (item,) = factories.ingest(project)
    other = factories.make_project(name="Tax advice", slug="tax")
    member(django_user_model, other, "otto")
    page = new_page()
    login(page, live_server.url, "otto", "otto-pass-1")
    expect(page.locator("#queue-table")).to_contain_text("Tax advice")
    assert "Clinical answers" not in page.content()
    page.goto(f"{live_server.url}/admin/reviews/reviewitem/")
    assert item.external_id not in page.content()
    assert "Clinical answers" not in page.content()
    response = page.goto(f"{live_server.url}/admin/reviews/reviewitem/{item.pk}/timeline/")
    assert response.status == 404
    response = page.goto(f"{live_server.url}/api/v1/items/{item.pk}/")
    assert response.status == 404
    assert ReviewItem.objects.get(pk=item.pk).status == ItemStatus.PENDING_REVIEW
