"""Browser: a senior's own decision by keys in the compact row, then decide-and-next."""

import re

import pytest
from playwright.sync_api import expect

from adjudication.models import AdjudicationCase, CaseStatus
from adjudication.services import case_claim_next
from reviews.models import ItemStatus
from tests.adjudication.conftest import make_reviewed_item  # noqa: F401 (fixture)
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

APPROVE = {"verdict": "approve", "severity": "none"}
REJECT = {"verdict": "reject", "reason_code": "tone", "severity": "minor"}


@pytest.fixture
def double_project(project):
    project.reviews_required = 2
    project.save(update_fields=["reviews_required"])
    return project


def test_senior_decides_by_keys_and_lands_on_the_next_case(
    live_server,
    new_page,
    screenshot,
    senior,
    make_reviewed_item,  # noqa: F811
):
    make_reviewed_item(APPROVE, REJECT)
    make_reviewed_item(APPROVE, REJECT)
    first, second = AdjudicationCase.objects.order_by("pk")
    claim = case_claim_next(user=senior)
    assert claim.case_id == first.pk
    page = new_page()
    login(page, live_server.url, "sena", "sena-pass-1")
    page.goto(f"{live_server.url}/admin/adjudication/adjudicationcase/{first.pk}/work/")
    # Review B's reason reads as a label.
    expect(page.locator("#adj-review-b")).to_contain_text("Tone")

    page.keyboard.press("3")  # neither: the own decision, its row focused
    expect(page.locator("#adj-own")).to_be_visible()
    expect(page.locator("#adj-own-row")).to_be_focused()
    page.keyboard.press("r")
    expect(page.locator("input[name=verdict][value=reject]")).to_be_checked()
    page.keyboard.press("s")
    page.keyboard.press("3")
    expect(page.locator("input[name=severity][value=critical]")).to_be_checked()
    expect(page.locator("#adj-uphold-neither")).to_be_checked()  # s3 was not "own" again
    page.select_option("select[name=reason_code]", "unsafe")
    expect(page.locator("select[name=reason_code] option:checked")).to_have_text("4. Unsafe")
    page.fill("textarea[name=rationale]", "Unsafe: no warning about the liver.")
    screenshot(page, "case-page-compact-decision")
    page.keyboard.press("Control+Shift+Enter")

    page.wait_for_url(re.compile(rf"/adjudicationcase/{second.pk}/work/$"))
    expect(page.locator(".messagelist")).to_contain_text("Here is the next case.")
    expect(page.locator("#adj-form")).to_be_visible()  # claimed: the form is ours
    first.refresh_from_db()
    first.item.refresh_from_db()
    assert first.status == CaseStatus.DECIDED
    assert (first.final_verdict, first.final_reason_code, first.final_severity) == (
        "reject",
        "unsafe",
        "critical",
    )
    assert first.item.status == ItemStatus.REJECTED
