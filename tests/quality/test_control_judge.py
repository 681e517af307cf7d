"""A control in a project with a judge shows a verdict as a real item does: an uploaded
control is judged through the judge's job before it is served, a control made from a
final item carries the item's verdict. Compared from a plain reviewer's side."""

import difflib
import re

import pytest
import redis
from django.test import Client
from django.urls import reverse
from rq import Queue

from reviews.judge.jobs import judge_items_job
from reviews.models import ItemStatus, Project
from reviews.quality.controls import KnownAnswer, control_create, controls_create_from_items
from reviews.services.ingest import item_ingest
from reviews.workspace.services import (
    ReviewInput,
    assignment_claim_next,
    assignment_release,
    review_submit,
)
from tests import factories
from tests.judge.conftest import fake_judge, judge_redis, make_judge  # noqa: F401 (fixtures)
from tests.quality.test_control_timeline import _item_page, _timeline

pytestmark = pytest.mark.django_db

CONTENT = {
    "prompt": "What is the maximum daily dose of paracetamol for adults?",
    "messages": [],
    "output": "For healthy adults the usual maximum is 4 g per day. [[judge:flag]]",
    "model_name": "acme-med",
    "model_version": "2026-11-01",
    "confidence": 0.9,
    "context": [],
    "metadata": {},
}


def _serve_controls(project, rate: float) -> None:
    Project.objects.filter(pk=project.pk).update(control_rate=rate)
    project.refresh_from_db()


def _review_page(client, assignment) -> str:
    url = reverse("admin:reviews_workspace_review", args=[assignment.pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _verdict_normalised(html: str, item) -> str:
    """Without the judge call's latency (it differs between any two calls) and the ids
    of the verdict and its item."""
    html = html.replace(f") on {item.pk}\n", ") on ITEM\n")
    html = re.sub(r'(name="judge_verdicts-0-(id|item)" value=")\d+"', r'\1ID"', html)
    return re.sub(
        r'(field-latency_ms.*?<div class="readonly">)\d+(</div>)', r"\1MS\2", html, flags=re.S
    )


def test_an_uploaded_control_is_judged_by_the_judge_job_before_it_is_served(
    project,
    reviewer,
    second_reviewer,
    django_user_model,
    fake_judge,  # noqa: F811
    judge_redis,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    lead = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, lead, "admin")
    make_judge(project, fake_judge)
    filler, normal = item_ingest(
        project=project,
        payloads=[
            {**CONTENT, "external_id": name, "tools": [], "is_transcript": False}
            for name in ("another-one", "a-real-one")
        ],
        via="API key 'prod'",
    ).items
    assert normal.status == ItemStatus.PENDING_JUDGE
    judge_items_job([filler.pk, normal.pk])
    normal.refresh_from_db()
    assert normal.status == ItemStatus.PENDING_REVIEW

    with django_capture_on_commit_callbacks(execute=True):
        control = control_create(
            project=project,
            content={**CONTENT, "tools": [], "is_transcript": False},
            answer=KnownAnswer(verdict="reject"),
            by=lead,
        ).item
    assert control.status == ItemStatus.PENDING_JUDGE
    # The same job a client's item gets, on the judge queue, after commit.
    (job,) = Queue("judge", connection=redis.Redis.from_url(judge_redis)).jobs
    assert job.func_name == "reviews.judge.jobs.judge_items_job"
    assert job.args[0] == [control.pk]

    # Not served while the judge has not answered: a reviewer gets a real item.
    _serve_controls(project, 1.0)
    first = assignment_claim_next(reviewer=second_reviewer, project=project)
    assert first.item_id == filler.pk

    judge_items_job(*job.args)
    control.refresh_from_db()
    assert (control.status, control.in_queue, control.is_final) == (
        ItemStatus.PENDING_REVIEW,
        False,
        False,
    )
    assert control.review_reasons == normal.review_reasons
    assert control.judge_verdicts.get().label == "flag"
    assert len(fake_judge.requests) == 3

    client = Client()
    client.force_login(reviewer)
    held = assignment_claim_next(reviewer=reviewer, project=project)
    assert held.item_id == control.pk
    control_review = _review_page(client, held)
    control_events, control_html = _timeline(client, control)
    control_page = _item_page(client, control)
    assignment_release(assignment_id=held.pk, reviewer=reviewer, skip=True)
    _serve_controls(project, 0.0)
    again = assignment_claim_next(reviewer=reviewer, project=project)
    assert again.item_id == normal.pk
    normal_review = _review_page(client, again)
    normal_events, normal_html = _timeline(client, normal)
    normal_page = _item_page(client, normal)

    rationale = "The dose is stated without the &lt;b&gt;liver&lt;/b&gt; caveat."
    for html in (control_review, normal_review, control_html, control_page):
        assert rationale in html
    assert [e[:2] for e in control_events] == [
        ("item", "Ingested"),
        ("item", "Status: Pending review"),
        ("judge", "Judge judge-large: Flag (score 0.31)"),
        ("claim", "Claimed"),
        ("item", "Status: In review"),
    ]
    assert normal_events == control_events
    # Neither shows the channel the real item came through, nor who uploaded the control.
    assert control_events[0][2:] == (
        "",
        "Ingested; checks passed; waiting for the judge (no trigger yet)",
    )
    assert "prod" not in normal_html and "lead" not in control_html
    a, b = _verdict_normalised(normal_page, normal), _verdict_normalised(control_page, control)
    assert a == b, "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm=""))
    assert "control" not in control_page.lower()

    # The project's admins still see how each came in.
    client.force_login(lead)
    admin_events, _ = _timeline(client, normal)
    assert admin_events[0][3].startswith("Ingested via API key 'prod'; checks passed;")
    admin_events, _ = _timeline(client, control)
    assert admin_events[0][2] == "lead"


def test_a_control_made_from_a_final_item_carries_its_judge_verdict(
    project,
    reviewer,
    second_reviewer,
    django_user_model,
    fake_judge,  # noqa: F811
):
    lead = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, lead, "admin")
    make_judge(project, fake_judge)
    source, normal = factories.ingest(
        project, {**CONTENT, "external_id": "decided"}, {**CONTENT, "external_id": "waiting"}
    )
    judge_items_job([source.pk, normal.pk])
    claimed = assignment_claim_next(reviewer=second_reviewer, project=project)
    assert claimed.item_id == source.pk
    review_submit(assignment_id=claimed.pk, reviewer=second_reviewer, data=ReviewInput("approve"))
    source.refresh_from_db()
    assert source.is_final
    (made,) = controls_create_from_items(items=[source], by=lead)
    control = made.item
    verdict = control.judge_verdicts.get()
    original = source.judge_verdicts.get()
    assert verdict.pk != original.pk
    assert (verdict.label, verdict.score, verdict.rationale, verdict.model) == (
        original.label,
        original.score,
        original.rationale,
        original.model,
    )
    assert len(fake_judge.requests) == 2  # copied, not judged again

    client = Client()
    client.force_login(reviewer)
    _serve_controls(project, 1.0)
    held = assignment_claim_next(reviewer=reviewer, project=project)
    assert held.item_id == control.pk
    control_events, _ = _timeline(client, control)
    control_review = _review_page(client, held)
    assignment_release(assignment_id=held.pk, reviewer=reviewer, skip=True)
    _serve_controls(project, 0.0)
    again = assignment_claim_next(reviewer=reviewer, project=project)
    assert again.item_id == normal.pk
    normal_events, _ = _timeline(client, normal)
    normal_review = _review_page(client, again)
    assert normal_events == control_events
    assert "liver" in control_review and "liver" in normal_review
