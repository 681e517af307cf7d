"""The pages work under the Content-Security-Policy and report no violation."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from reviews.services.accounts import user_roles_sync
from tests import factories
from tests.e2e.conftest import login
from tests.e2e.test_dashboard import seed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Runs before any page script, outside the page's policy (Playwright injects it).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
    " at " + event.sourceFile + ":" + event.lineNumber
  );
});
"""


def watched(new_page):
    """A page that records CSP violations from the DOM event and from the console."""
    page = new_page()
    console = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    return page, console


def violations(page, console) -> list[str]:
    return page.evaluate("window.__cspViolations") + console


def test_review_page_works_under_the_policy(live_server, new_page, django_user_model):
    project = factories.make_project(name="Clinical answers", slug="clinical")
    (item,) = factories.ingest(
        project, factories.item_payload(output="Adults may take up to 8 g a day.")
    )
    rita = django_user_model.objects.create_user("rita", password="rita-pass-1", is_staff=True)
    factories.add_member(project, rita, "reviewer")
    user_roles_sync(user=rita)

    page, console = watched(new_page)
    response = page.goto(f"{live_server.url}/admin/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    login(page, live_server.url, "rita", "rita-pass-1")
    page.locator("tr[data-project=clinical]").get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(re.compile(r"/workspace/review/\d+/$"))
    expect(page.locator("h1")).to_contain_text(item.external_id)

    # workspace.js runs: the editor opens on "e" and the live diff follows the typing.
    page.keyboard.press("e")
    editor = page.locator("#ws-editor")
    expect(editor).to_be_focused()
    editor.fill("Adults may take up to 4 g a day.")
    expect(page.locator("#ws-diff ins")).to_have_text("4")
    assert violations(page, console) == []


def test_dashboard_works_under_the_policy(live_server, new_page, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")
    reviewer = django_user_model.objects.create_user("rita", password="x-pass-123", is_staff=True)
    auditor = django_user_model.objects.create_user("audrey", password="x-pass-123", is_staff=True)
    seed(reviewer, auditor)

    page, console = watched(new_page)
    login(page, live_server.url, "admin", "admin-pass-1")
    page.goto(live_server.url + reverse("admin:reviews_dashboard"))
    page.wait_for_selector("[id^=chart-accuracy-]")
    for chart in ("[id^=chart-accuracy-]", "#chart-queue", "#chart-reviewers"):
        box = page.locator(chart).first.bounding_box()
        column = page.locator(chart).first.locator("xpath=..").bounding_box()
        assert box and 200 < box["width"] <= column["width"], chart
    # The chart font comes from SVG attributes, not a (blocked) style attribute.
    font = page.locator("[id^=chart-accuracy-] text").first.evaluate(
        "node => getComputedStyle(node).fontSize"
    )
    assert font == "12px"
    assert violations(page, console) == []


def test_api_docs_work_under_the_policy(live_server, new_page, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")
    page, console = watched(new_page)
    login(page, live_server.url, "admin", "admin-pass-1")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("HITL Review Platform API")
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert violations(page, console) == []


def test_rq_job_list_runs_no_inline_script(live_server, new_page, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")
    page, console = watched(new_page)
    login(page, live_server.url, "admin", "admin-pass-1")
    page.goto(live_server.url + reverse("admin:django_rq_jobs", args=[0]))
    expect(page.locator("#changelist")).to_be_visible()
    assert violations(page, console) == []
