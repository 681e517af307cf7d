"""Reviewer quality in the admin: controls, reviewer pages, the quarantine form.

Project admins only. The attacks are requests a browser could send: another
project's admin naming this project's reviewer or control, and a plain
reviewer looking for which items are controls. They see and change nothing.
"""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.models import ControlAnswer, ItemStatus, Project, Quarantine, ReviewItem
from reviews.monitoring.services import wilson_interval
from reviews.quality.controls import KnownAnswer, control_create
from reviews.quality.selectors import RUN_MIN
from reviews.templatetags.monitoring_tags import pct
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.datasets.factories import reviewed

pytestmark = pytest.mark.django_db

LIST = reverse("admin:reviews_reviewitem_changelist")
REVIEWERS = reverse("admin:reviews_quality_reviewers")
CONTROLS = reverse("admin:reviews_controlanswer_changelist")
CONTROL_ADD = reverse("admin:reviews_controlanswer_add")
CONTENT = {
    "prompt": "Is 12 g of paracetamol a day safe?",
    "messages": [],
    "output": '{"safe": true, "dose_g": 12}',
    "model_name": "acme-med",
    "model_version": "2026-11-01",
    "confidence": 0.9,
    "context": [],
    "metadata": {},
    "tools": [],
    "is_transcript": False,
}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(django_user_model, project):
    users = {}
    for name, role in (("rita", "reviewer"), ("sam", "reviewer"), ("lead", "admin")):
        user = django_user_model.objects.create_user(name, password=f"{name}-pass-1", is_staff=True)
        factories.add_member(project, user, role)
        users[name] = user
    other = factories.make_project(name="Tax advice", slug="tax")
    bella = django_user_model.objects.create_user("bella", password="bella-pass-1", is_staff=True)
    factories.add_member(other, bella, "admin")
    users["bella"] = bella
    return users


def _controls(project, lead, count: int) -> list[ControlAnswer]:
    return [
        control_create(
            project=project,
            content={**CONTENT, "prompt": f"{CONTENT['prompt']} ({n})"},
            answer=KnownAnswer(verdict="reject"),
            by=lead,
        )
        for n in range(count)
    ]


def _review_controls(project, reviewer, verdicts: list[str]) -> None:
    """``reviewer`` claims a control per verdict (real work waits meanwhile) and gives it."""
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    project.refresh_from_db()
    factories.ingest(project)
    for verdict in verdicts:
        assignment = assignment_claim_next(reviewer=reviewer, project=project)
        assert assignment.item.is_control
        data = (
            ReviewInput("reject", reason_code="factual_error", severity="major")
            if verdict == "reject"
            else ReviewInput("approve")
        )
        review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)
    Project.objects.filter(pk=project.pk).update(control_rate=0.0)
    project.refresh_from_db()


def _approve_run(project, reviewer, count: int) -> list[int]:
    factories.ingest(project, *[factories.item_payload() for _ in range(count)])
    ids = []
    for _ in range(count):
        assignment = assignment_claim_next(reviewer=reviewer, project=project)
        review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput("approve"))
        ids.append(assignment.item_id)
    return ids


@pytest.fixture
def measured(project, people):
    """rita: 3 of 4 controls right, then a run of identical approvals; sam: 2 of 2."""
    _controls(project, people["lead"], 6)
    _review_controls(project, people["rita"], ["reject", "reject", "reject", "approve"])
    _review_controls(project, people["sam"], ["reject", "reject"])
    run = _approve_run(project, people["rita"], RUN_MIN)
    return run


def test_reviewer_page_lists_control_accuracy_with_its_wilson_interval(project, people, measured):
    response = _client(people["lead"]).get(REVIEWERS, {"project": project.pk})
    assert response.status_code == 200
    rows = {row.username: row for row in response.context["rows"]}
    assert set(rows) == {"rita", "sam"}
    assert (rows["rita"].accuracy.correct, rows["rita"].accuracy.total) == (3, 4)
    assert rows["rita"].decisions == RUN_MIN  # the real work; controls aside
    low, high = wilson_interval(3, 4)
    html = response.content.decode()
    assert f"3 / 4 ({pct(0.75)})" in html
    assert f"{pct(low)} to {pct(high)}" in html
    assert "2 / 2" in html


def test_reviewer_detail_shows_each_signal_with_its_items(project, people, measured):
    rita = people["rita"]
    url = reverse("admin:reviews_quality_reviewer", args=[project.pk, rita.pk])
    response = _client(people["lead"]).get(url)
    assert response.status_code == 200
    run = {s["name"]: s for s in response.context["found"]}["identical_run"]
    assert run["count"] >= RUN_MIN
    html = response.content.decode()
    for item_id in measured:
        assert reverse("admin:reviews_reviewitem_change", args=[item_id]) in html
    assert response.context["accuracy"].correct == 3
    # Controls are not among the signals' items: they stay measurements.
    controls = set(ReviewItem.objects.filter(is_control=True).values_list("pk", flat=True))
    for signal in response.context["found"]:
        assert not {entry.item_id for entry in signal["items"]} & controls


def test_quarantine_form_withdraws_the_period_and_says_so(project, people, measured):
    rita, lead = people["rita"], people["lead"]
    today = timezone.localdate().isoformat()
    url = reverse("admin:reviews_quality_quarantine", args=[project.pk, rita.pk])
    response = _client(lead).post(url, {"start": today, "end": today, "reason": "Rushed"})
    assert response.status_code == 302
    (quarantine,) = Quarantine.objects.all()
    assert quarantine.created_by == lead and not quarantine.by_rule
    assert quarantine.reason == "Rushed"
    assert quarantine.items_withdrawn == RUN_MIN
    assert set(ReviewItem.objects.filter(pk__in=measured).values_list("status", flat=True)) == {
        ItemStatus.PENDING_REVIEW
    }
    page = _client(lead).get(response.url)
    assert "Rushed" in page.content.decode()
    assert list(page.context["quarantines"]) == [quarantine]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"start": "2026-12-02", "end": "2026-12-01", "reason": "x"}, "end"),
        ({"start": "2026-12-01", "end": "2026-12-02", "reason": ""}, "reason"),
        ({"start": "not a date", "end": "2026-12-02", "reason": "x"}, "start"),
    ],
)
def test_quarantine_form_refuses_bad_input_naming_the_field(project, people, data, field):
    rita, lead = people["rita"], people["lead"]
    _approve_run(project, rita, 1)
    url = reverse("admin:reviews_quality_quarantine", args=[project.pk, rita.pk])
    response = _client(lead).post(url, data)
    assert response.status_code == 400
    assert field in response.context["quarantine_form"].errors
    assert not Quarantine.objects.exists()


def test_another_projects_admin_sees_and_quarantines_nothing_here(project, people, measured):
    bella, rita = people["bella"], people["rita"]
    client = _client(bella)
    listing = client.get(REVIEWERS, {"project": project.pk})
    assert listing.status_code == 400 and listing.context["rows"] is None
    assert "rita" not in listing.content.decode()
    detail = reverse("admin:reviews_quality_reviewer", args=[project.pk, rita.pk])
    assert client.get(detail).status_code == 404
    url = reverse("admin:reviews_quality_quarantine", args=[project.pk, rita.pk])
    today = timezone.localdate().isoformat()
    assert client.post(url, {"start": today, "end": today, "reason": "x"}).status_code == 404
    assert not Quarantine.objects.exists()
    controls = client.get(CONTROLS)
    assert controls.status_code == 200
    assert list(controls.context["cl"].result_list) == []
    control = ControlAnswer.objects.first()
    change = reverse("admin:reviews_controlanswer_change", args=[control.pk])
    answer = client.post(change, {"expected_verdict": "approve", "active": "on"})
    assert answer.status_code in (302, 403, 404)
    control.refresh_from_db()
    assert control.expected_verdict == "reject"


def test_a_plain_reviewer_cannot_tell_which_items_are_controls(project, people, measured):
    rita = people["rita"]
    client = _client(rita)
    assert client.get(REVIEWERS).status_code == 403
    assert client.get(CONTROLS).status_code == 403
    controls = list(ReviewItem.objects.filter(is_control=True))
    # The control filter is not theirs: the list answers as for any unknown filter.
    assert client.get(LIST, {"control": "yes"}).url == f"{LIST}?e=1"
    everything = client.get(LIST)
    assert not {i.pk for i in everything.context["cl"].result_list} & {c.pk for c in controls}
    assert "control" not in everything.content.decode().lower()
    # The item page of a control they reviewed says nothing of it.
    page = client.get(reverse("admin:reviews_reviewitem_change", args=[controls[0].pk]))
    assert page.status_code == 200
    assert "control" not in page.content.decode().lower()
    # The admins' actions are not offered, and a crafted POST makes no control.
    final = ReviewItem.objects.filter(status=ItemStatus.APPROVED).first()
    before = ControlAnswer.objects.count()
    client.post(LIST, {"action": "make_controls", "index": 0, "_selected_action": [str(final.pk)]})
    client.post(
        LIST,
        {"action": "stop_controls", "index": 0, "_selected_action": [str(controls[0].pk)]},
    )
    assert ControlAnswer.objects.count() == before
    assert ControlAnswer.objects.filter(active=True).count() == before


def test_admin_marks_final_items_as_controls_and_unmarks_them(project, people):
    lead = people["lead"]
    final = reviewed(project, verdict="reject", severity="major", reason_code="unsafe")
    (pending,) = factories.ingest(project)
    client = _client(lead)
    response = client.post(
        LIST,
        {
            "action": "make_controls",
            "index": 0,
            "_selected_action": [str(final.pk), str(pending.pk)],
        },
    )
    assert response.status_code == 302
    (control,) = ControlAnswer.objects.all()
    assert control.source_item == final and control.expected_verdict == "reject"
    assert control.item.prompt == final.prompt and control.item.is_control
    listed = client.get(LIST, {"control": "yes"})
    assert [i.pk for i in listed.context["cl"].result_list] == [control.item_id]
    page = client.get(reverse("admin:reviews_reviewitem_change", args=[control.item_id]))
    assert "Is control" in page.content.decode()

    for action, active in (("stop_controls", False), ("serve_controls", True)):
        client.post(
            LIST, {"action": action, "index": 0, "_selected_action": [str(control.item_id)]}
        )
        control.refresh_from_db()
        assert control.active is active
    assert control.history.latest().history_change_reason == "Served again"


def _upload(**overrides) -> dict:
    data = {
        "prompt": CONTENT["prompt"],
        "output": CONTENT["output"],
        "model_name": "acme-med",
        "model_version": "2026-11-01",
        "confidence": "0.4",
        "context": "[]",
        "metadata": "{}",
        "expected_verdict": "correct",
        "expected_output": "",
        "must_change": "/safe\n/dose_g",
    }
    data.update(overrides)
    return data


def test_admin_uploads_a_control_with_paths_that_must_change(project, people):
    Project.objects.filter(pk=project.pk).update(allow_corrections=True)
    response = _client(people["lead"]).post(CONTROL_ADD, _upload(project=project.pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    (control,) = ControlAnswer.objects.all()
    assert control.must_change == ["/safe", "/dose_g"]
    assert control.created_by == people["lead"]
    item = control.item
    assert item.is_control and not item.in_queue and item.output == CONTENT["output"]
    assert item.review_reasons == ["gate", "low_confidence"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"must_change": "/missing"}, "must_change"),
        ({"must_change": "dose"}, "must_change"),
        ({"output": "Not JSON at all."}, "must_change"),
        ({"confidence": "2"}, "confidence"),
        ({"expected_verdict": "maybe"}, "expected_verdict"),
        ({"metadata": "[1]"}, "metadata"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_control_upload_refuses_bad_input_naming_the_field(project, people, overrides, field):
    data = _upload(project=project.pk, **overrides)
    response = _client(people["lead"]).post(CONTROL_ADD, data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not ControlAnswer.objects.exists() and not ReviewItem.objects.exists()


def test_admin_changes_the_known_answer_and_history_keeps_the_old(project, people):
    (control,) = _controls(project, people["lead"], 1)
    url = reverse("admin:reviews_controlanswer_change", args=[control.pk])
    client = _client(people["lead"])
    response = client.post(url, {"expected_verdict": "approve", "must_change": "", "active": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    control.refresh_from_db()
    assert control.expected_verdict == "approve" and control.active is False
    assert [h.expected_verdict for h in control.history.order_by("history_date")] == [
        "reject",
        "approve",
    ]
    refused = client.post(url, {"expected_verdict": "correct", "must_change": "/nope"})
    assert refused.status_code == 200
    assert "must_change" in refused.context["adminform"].form.errors


def test_agreement_report_page_shows_control_accuracy(project, people, measured):
    response = _client(people["lead"]).get(reverse("admin:adjudication_agreement"))
    assert response.status_code == 200
    html = response.content.decode()
    low, high = wilson_interval(3, 4)
    assert f"3 / 4 ({pct(0.75)})" in html
    assert f"{pct(low)} to {pct(high)}" in html


def test_a_reviewer_with_only_control_reviews_has_an_agreement_row(project, people):
    _controls(project, people["lead"], 2)
    _review_controls(project, people["sam"], ["reject", "approve"])
    client = _client(people["lead"])
    answer = client.get(reverse("admin:adjudication_agreement"))
    (row,) = [r for r in answer.context["figures"]["reviewers"] if r["reviewer"] == "sam"]
    assert row["reviews"] == 0 and row["controls"]["correct"] == 1
    assert f"1 / 2 ({pct(0.5)})" in answer.content.decode()
