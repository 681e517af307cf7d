"""A control's review page and a normal item's, with the same content, differ in
nothing that names the control: compared as DOMs in a real browser."""

import difflib
import re
import uuid

import pytest

from reviews.models import Project
from reviews.quality.controls import KnownAnswer, control_create
from reviews.services.ingest import item_ingest
from reviews.workspace.services import assignment_claim_next, assignment_release
from tests import factories
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Every element as tag, sorted attributes and its own text, in document order.
DOM_JS = """() => {
  const out = [];
  const walk = (node, depth) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text) out.push(' '.repeat(depth) + '#text ' + text);
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const attrs = Array.from(node.attributes).map(a => a.name + '=' + JSON.stringify(a.value));
    attrs.sort();
    const extra = [];
    if ('value' in node && typeof node.value === 'string' && node.value)
      extra.push('.value=' + JSON.stringify(node.value));
    if (node.checked) extra.push('.checked');
    out.push(' '.repeat(depth) + '<' + node.tagName.toLowerCase() + ' ' + attrs.join(' ')
             + (extra.length ? ' ' + extra.join(' ') : '') + '>');
    for (const child of node.childNodes) walk(child, depth + 1);
  };
  walk(document.documentElement, 0);
  return out.join('\\n');
}"""

CONTENT = {
    "prompt": "What is the maximum daily dose of paracetamol for adults?",
    "messages": [{"role": "system", "content": "You are a careful clinician."}],
    "output": "For healthy adults the usual maximum is 4 g per day, split into doses.",
    "model_name": "acme-med",
    "model_version": "2026-11-01",
    "confidence": 0.42,
    "context": [{"title": "Formulary", "source": "bnf.pdf", "text": "Max 4 g in 24 h."}],
    "metadata": {"ticket": "T-1"},
}


def dump(page, url: str) -> tuple[str, str]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page.evaluate(DOM_JS), page.content()


def normalise(text: str, *, item) -> str:
    """Take out what legitimately differs between two claims: ids, tokens, the lease clock."""
    text = text.replace(item.external_id, "EXTERNAL_ID")
    text = text.replace(f"/reviewitem/{item.pk}/", "/reviewitem/ITEM/")
    text = re.sub(r"/workspace/review/\d+/", "/workspace/review/CLAIM/", text)
    # Django masks the CSRF token afresh on every page.
    text = re.sub(r'value="\w{64}" \.value="\w{64}"', 'value="TOKEN"', text)
    # The two pages load a moment apart: a minute may turn between them.
    text = re.sub(r"Your claim expires at \d\d:\d\d", "Your claim expires at HH:MM", text)
    text = re.sub(r"\b\d+:\d\d left", "MM:SS left", text)
    return re.sub(r'data-lease-seconds="\d+"', 'data-lease-seconds="LEASE"', text)


def test_a_control_review_page_is_the_normal_one(live_server, new_page, django_user_model):
    project = factories.make_project(name="Clinical answers", slug="clinical", control_rate=0.0)
    reviewer = django_user_model.objects.create_user("rita", password="rita-pass-1", is_staff=True)
    lead = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, reviewer, "reviewer")
    factories.add_member(project, lead, "admin")
    # A client's id looks like the control's (a uuid); both are normalised away anyway.
    (normal,) = factories.ingest(project, {**CONTENT, "external_id": str(uuid.uuid4())})
    control = control_create(
        project=project,
        content={**CONTENT, "tools": [], "is_transcript": False},
        answer=KnownAnswer(verdict="approve"),
        by=lead,
    ).item

    page = new_page()
    login(page, live_server.url, "rita", "rita-pass-1")
    first = assignment_claim_next(reviewer=reviewer, project=project)
    assert first.item_id == normal.pk
    url = f"{live_server.url}/admin/reviews/reviewitem/workspace/review/{first.pk}/"
    normal_dom, normal_html = dump(page, url)
    assignment_release(assignment_id=first.pk, reviewer=reviewer)
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    project.refresh_from_db()
    second = assignment_claim_next(reviewer=reviewer, project=project)
    assert second.item_id == control.pk
    url = f"{live_server.url}/admin/reviews/reviewitem/workspace/review/{second.pk}/"
    control_dom, control_html = dump(page, url)

    for dom in (normal_dom, control_dom):
        assert CONTENT["prompt"] in dom and CONTENT["output"] in dom
        assert "Max 4 g in 24 h." in dom
    a = normalise(normal_dom, item=normal)
    b = normalise(control_dom, item=control)
    diff = "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm=""))
    assert a == b, diff
    # Nothing on either page says "control": not in the markup, scripts or styles.
    for html in (normal_html, control_html):
        assert "control" not in html.lower()


def _dates_out(text: str) -> str:
    # The two items are claimed seconds apart: the timeline's and the admin's own dates.
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "WHEN", text)
    return re.sub(
        r"[A-Z][a-z]{2,8}\.? \d{1,2}, \d{4}, (\d{1,2}(:\d\d)? [ap]\.m\.|noon|midnight)",
        "WHEN",
        text,
    )


def _item_pages(page, base: str, item) -> dict[str, tuple[int, str]]:
    """Item page, timeline and history page of ``item``: status and normalised DOM."""
    pages = {}
    for name, path in (
        ("item", f"/admin/reviews/reviewitem/{item.pk}/change/"),
        ("timeline", f"/admin/reviews/reviewitem/{item.pk}/timeline/"),
        ("history", f"/admin/reviews/reviewitem/{item.pk}/history/"),
    ):
        response = page.goto(base + path)
        page.wait_for_load_state("networkidle")
        dom = normalise(page.evaluate(DOM_JS), item=item).replace(item.payload_hash, "HASH")
        pages[name] = (response.status, _dates_out(dom))
    return pages


def test_a_controls_item_page_timeline_and_history_are_a_real_items(
    live_server, new_page, django_user_model
):
    project = factories.make_project(name="Clinical answers", slug="clinical", control_rate=0.0)
    reviewer = django_user_model.objects.create_user("rita", password="rita-pass-1", is_staff=True)
    lead = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, reviewer, "reviewer")
    factories.add_member(project, lead, "admin")
    content = {**CONTENT, "tools": [], "is_transcript": False}
    # A second real item: controls are served only beside real work.
    normal, _ = item_ingest(
        project=project,
        payloads=[{**content, "external_id": str(uuid.uuid4())} for _ in range(2)],
        via="API key 'prod'",
    ).items
    control = control_create(
        project=project, content=content, answer=KnownAnswer(verdict="approve"), by=lead
    ).item

    page = new_page()
    login(page, live_server.url, "rita", "rita-pass-1")
    first = assignment_claim_next(reviewer=reviewer, project=project)
    assert first.item_id == normal.pk
    normal_pages = _item_pages(page, live_server.url, normal)
    assignment_release(assignment_id=first.pk, reviewer=reviewer, skip=True)
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    project.refresh_from_db()
    second = assignment_claim_next(reviewer=reviewer, project=project)
    assert second.item_id == control.pk
    control_pages = _item_pages(page, live_server.url, control)

    assert normal_pages["item"][0] == normal_pages["timeline"][0] == 200
    assert normal_pages["history"][0] == 403  # the raw audit trail is the admins'
    assert "Claimed by rita" in normal_pages["timeline"][1]
    for name in ("item", "timeline", "history"):
        a, b = normal_pages[name], control_pages[name]
        diff = "\n".join(difflib.unified_diff(a[1].splitlines(), b[1].splitlines(), lineterm=""))
        assert a == b, f"{name}:\n{diff}"
        assert "control" not in b[1].lower()
        assert "prod" not in a[1] and "lead" not in b[1]
