"""Content-Security-Policy on every response, and no inline code left for it to block."""

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from reviews.models import Project, WebhookDelivery
from reviews.workspace.services import assignment_claim_next
from tests import factories
from tests.monitoring.helpers import gate_decisions, ingest_many

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    parts = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return dict(parts)


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks: inline scripts, styles and handlers."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        executable = attributes.get("type") != "application/json"
        if tag == "script" and not attributes.get("src") and executable:
            self.found.append(f"inline <script> {attributes}")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attributes.items():
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}={value!r}>")
            is_url = name in {"href", "src", "action", "formaction"}
            if is_url and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def assert_strict(response):
    assert response.status_code == 200, response.status_code
    policy = directives(response)
    assert policy == POLICY
    assert "unsafe-inline" not in policy["script-src"]
    assert "unsafe-eval" not in policy["script-src"]
    assert inline_code(response.content.decode()) == []


@pytest.fixture
def seeded(project, reviewer, senior, admin_user):
    gate_decisions(project, reviewer=reviewer, approved=6, wrong=2)
    ingest_many(project, 4)
    return project


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_login_page(db):
    assert_strict(Client().get(reverse("admin:login")))


def test_admin_index_and_item_pages_as_superuser(seeded, admin_user):
    client = logged_in(admin_user)
    assert_strict(client.get(reverse("admin:index")))
    assert_strict(client.get(reverse("admin:reviews_reviewitem_changelist")))
    item = seeded.items.first()
    assert_strict(client.get(reverse("admin:reviews_reviewitem_change", args=[item.pk])))


def test_workspace_queue_and_review_page(seeded, reviewer):
    client = logged_in(reviewer)
    assert_strict(client.get(reverse("admin:reviews_workspace_queue")))
    assignment = assignment_claim_next(reviewer=reviewer, project=seeded)
    page = client.get(reverse("admin:reviews_workspace_review", args=[assignment.pk]))
    assert_strict(page)
    # The page's data reaches workspace.js through a json_script block.
    assert b'<script id="ws-original-output" type="application/json">' in page.content


def test_monitoring_dashboard_with_charts(seeded, admin_user):
    page = logged_in(admin_user).get(reverse("admin:reviews_dashboard"))
    assert_strict(page)
    assert page.content.count(b'<svg xmlns="http://www.w3.org/2000/svg" class="hitl-chart"') >= 5


def test_adjudication_queue(seeded, senior):
    assert_strict(logged_in(senior).get(reverse("admin:adjudication_queue")))


def test_webhook_delivery_page(monitor_project, admin_user):
    Project.objects.filter(pk=monitor_project.pk).update(
        webhook_url="http://127.0.0.1:9/x", webhook_secret="s3cret"
    )
    monitor_project.refresh_from_db()
    factories.ingest(monitor_project)
    delivery = WebhookDelivery.objects.get()
    page = logged_in(admin_user).get(
        reverse("admin:reviews_webhookdelivery_change", args=[delivery.pk])
    )
    assert_strict(page)
    assert b"reviews/webhooks.css" in page.content


def test_api_docs_load_their_script_from_a_file(admin_user):
    client = logged_in(admin_user)
    page = client.get("/api/docs/")
    assert_strict(page)
    assert b'<script src="/api/docs/?script="></script>' in page.content
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


def test_lockout_page(admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 1
    client = Client()
    response = client.post(reverse("admin:login"), {"username": "admin", "password": "wrong"})
    assert response.status_code == 429
    assert directives(response) == POLICY
    assert inline_code(response.content.decode()) == []


def test_static_files_and_errors_carry_the_policy_too(admin_user):
    client = logged_in(admin_user)
    assert directives(client.get("/static/reviews/workspace.js")) == POLICY
    assert directives(client.get("/admin/no-such-page/")) == POLICY
    assert directives(client.get("/api/v1/items/")) == POLICY
