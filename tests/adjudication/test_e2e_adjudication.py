"""Browser: two reviewers disagree in the workspace, a senior resolves it, the client reads it.

Drives Debian's chromium through Playwright against pytest-django's live server:
both reviews go through the real reviewer workspace pages, the decision through
the adjudication case page, and the result is read over HTTP with the API key.
"""

import json
import os
import urllib.request

import pytest
from django.db import connections
from django.urls import reverse
from playwright.sync_api import Page, expect, sync_playwright

from reviews.models import ItemStatus, ReviewItem
from reviews.services.projects import api_key_create
from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
CORRECTION = "Healthy adults: at most 3 g of paracetamol per day, <b>split</b> into doses."


@pytest.fixture
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes between page actions are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connection
        # (asgiref's context-local storage); close it so the test database can go.
        connections.close_all()


def log_in(browser, live_server, username: str, password: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()
    return page


def start_reviewing(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}{reverse('admin:reviews_workspace_queue')}")
    page.locator("tr[data-project=clinical] button[type=submit]").click()
    expect(page.locator("#review-form")).to_be_visible()


def test_two_reviewers_disagree_and_a_senior_resolves_it(browser, live_server, django_user_model):
    project = factories.make_project(
        name="Clinical answers", slug="clinical", mode="gate", reviews_required=2
    )
    for username, role in (("rita", "reviewer"), ("sam", "reviewer"), ("sena", "senior")):
        user = django_user_model.objects.create_user(
            username, password=f"{username}-pass-1", is_staff=True
        )
        factories.add_member(project, user, role)
    _key, raw_key = api_key_create(project=project, name="client")
    (item,) = factories.ingest(project, factories.item_payload(external_id="case-1842"))

    rita = log_in(browser, live_server, "rita", "rita-pass-1")
    start_reviewing(rita, live_server)
    with rita.expect_navigation():
        rita.click("#ws-approve")

    sam = log_in(browser, live_server, "sam", "sam-pass-1")
    start_reviewing(sam, live_server)
    sam.click("#ws-open-correct")
    sam.fill("#ws-editor", CORRECTION)
    sam.select_option("#ws-reason", "factual_error")
    sam.check("input[name=severity][value=major]")
    with sam.expect_navigation():
        sam.click("#ws-submit-correct")

    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION

    sena = log_in(browser, live_server, "sena", "sena-pass-1")
    sena.goto(f"{live_server.url}{reverse('admin:adjudication_queue')}")
    expect(sena.locator("#adj-queue")).to_contain_text("case-1842")
    sena.click("#adj-claim-next")
    expect(sena.locator("#adj-review-a")).to_contain_text("Approve")
    expect(sena.locator("#adj-review-b")).to_contain_text("Correct")
    # The correction's markup is shown as text, and the diff marks what changed.
    expect(sena.locator("#adj-diff-B ins").first).to_be_visible()
    expect(sena.locator("#adj-diff-B")).to_contain_text("<b>split</b>")
    assert sena.locator("#adj-diff-B b").count() == 0

    # Deciding without a rationale records nothing and says why.
    sena.click("#adj-uphold-b")
    sena.click("#adj-decide")
    expect(sena.locator(".errornote")).to_be_visible()
    expect(sena.locator("#adj-form")).to_contain_text("rationale is required")

    sena.click("#adj-uphold-b")
    sena.fill("textarea[name=rationale]", "The formulary caps healthy adults at 3 g here.")
    sena.click("#adj-decide")
    expect(sena.locator("#adj-decided")).to_contain_text("Review B")
    expect(sena.locator("#adj-final-output")).to_have_text(CORRECTION)

    request = urllib.request.Request(
        f"{live_server.url}/api/v1/items/{item.pk}/",
        headers={"Authorization": f"Api-Key {raw_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "corrected"
    assert body["final_output"] == CORRECTION
    assert body["decision"]["adjudicated"] is True
    assert ReviewItem.objects.get(pk=item.pk).history.first().history_user.username == "sena"
