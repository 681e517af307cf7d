"""Step verdicts: a reviewer marks which turn or tool call of a conversation went wrong."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from adjudication.models import AdjudicationCase
from reviews.models import (
    Assignment,
    ItemStatus,
    Project,
    Quarantine,
    Review,
    StepVerdict,
    WebhookDelivery,
)
from reviews.outcomes import decision_steps_of
from reviews.workspace.services import (
    ReviewInput,
    ReviewInvalid,
    StaleAssignment,
    StepMark,
    assignment_claim_next,
    assignment_release,
    review_submit,
    step_verdict_mark,
    step_verdict_remove,
)
from tests import factories

pytestmark = pytest.mark.django_db

# The default transcript (tests.factories.transcript_messages, two rounds):
# 1 system, 2 user, 3 assistant calling call_0_search and call_0_dose, 4-5 their
# results, 6 assistant (with text) calling call_1_*, 7-8 results, 9 the final answer.
CALL_TURN, RESULT_TURN, FINAL_TURN = 3, 4, 9


def review_url(assignment):
    return reverse("admin:reviews_workspace_review", args=[assignment.pk])


def steps_url(assignment):
    return reverse("admin:reviews_workspace_steps", args=[assignment.pk])


@pytest.fixture
def claim(project, reviewer):
    """The reviewer's claim on a two-round agent trace."""
    factories.ingest_transcript(project)
    return assignment_claim_next(reviewer=reviewer, project=project)


def mark(claim, reviewer, **fields):
    fields.setdefault("reason", "factual_error")
    fields.setdefault("severity", "major")
    return step_verdict_mark(assignment_id=claim.pk, reviewer=reviewer, mark=StepMark(**fields))


def refused(claim, reviewer, **fields) -> dict:
    with pytest.raises(ReviewInvalid) as caught:
        mark(claim, reviewer, **fields)
    assert not StepVerdict.objects.exists()
    return caught.value.detail


# --- services ---------------------------------------------------------------


def test_marking_a_tool_call_records_the_step_the_part_and_history(claim, reviewer):
    verdict = mark(claim, reviewer, step=CALL_TURN, part="call_0_dose", note="wrong group ")
    assert (verdict.item_id, verdict.assignment_id, verdict.reviewer_id) == (
        claim.item_id,
        claim.pk,
        reviewer.pk,
    )
    assert (verdict.step, verdict.part, verdict.reason, verdict.severity, verdict.note) == (
        CALL_TURN,
        "call_0_dose",
        "factual_error",
        "major",
        "wrong group",
    )
    assert verdict.review is None
    row = verdict.history.get()
    assert row.history_user == reviewer
    assert row.history_change_reason == "Marked step 3, tool call call_0_dose"


def test_marking_the_same_part_again_replaces_the_mark(claim, reviewer):
    mark(claim, reviewer, step=CALL_TURN, severity="minor")
    mark(claim, reviewer, step=CALL_TURN, severity="critical", reason="hallucination")
    mark(claim, reviewer, step=CALL_TURN, part="call_0_search")
    marks = list(StepVerdict.objects.values_list("step", "part", "reason", "severity"))
    assert marks == [
        (CALL_TURN, "", "hallucination", "critical"),
        (CALL_TURN, "call_0_search", "factual_error", "major"),
    ]


def test_removing_a_mark_deletes_it_and_keeps_its_history(claim, reviewer):
    verdict = mark(claim, reviewer, step=RESULT_TURN)
    assert step_verdict_remove(assignment_id=claim.pk, reviewer=reviewer, step=RESULT_TURN)
    assert not StepVerdict.objects.exists()
    assert not step_verdict_remove(assignment_id=claim.pk, reviewer=reviewer, step=RESULT_TURN)
    kinds = list(
        StepVerdict.history.filter(id=verdict.pk)
        .order_by("history_id")
        .values_list("history_type", "history_change_reason")
    )
    assert kinds == [("+", "Marked step 4"), ("-", "Unmarked step 4")]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"step": 0}, "step", "No step 0: the conversation has steps 1 to 9."),
        ({"step": 10}, "step", "No step 10"),
        ({"step": 2}, "step", "Step 2 is a user turn"),
        ({"step": 1}, "step", "Step 1 is a system turn"),
        ({"step": CALL_TURN, "part": "call_9_x"}, "part", "has no tool call 'call_9_x'"),
        ({"step": RESULT_TURN, "part": "call_0_search"}, "part", "has no tool call"),
        ({"step": CALL_TURN, "reason": "made_up"}, "reason", "Choose one of factual_error"),
        ({"step": CALL_TURN, "reason": "other"}, "note", "Describe the problem"),
        ({"step": CALL_TURN, "severity": "none"}, "severity", "Choose one of minor"),
        ({"step": CALL_TURN, "severity": ""}, "severity", "Choose one of minor"),
        ({"step": CALL_TURN, "note": "x" * 5001}, "note", "At most 5000 characters."),
    ],
)
def test_a_mark_the_rules_refuse_names_its_field_and_stores_nothing(
    claim, reviewer, fields, field, message
):
    detail = refused(claim, reviewer, **fields)
    assert list(detail) == [field]
    assert message in detail[field][0]


def test_the_final_turn_and_a_plain_item_can_be_marked(project, reviewer, claim):
    assert mark(claim, reviewer, step=FINAL_TURN).step == FINAL_TURN
    assignment_release(assignment_id=claim.pk, reviewer=reviewer)
    # A prompt-and-output item is the conversation [user, assistant].
    factories.ingest(project, factories.item_payload(external_id="plain"))
    Assignment.objects.filter(pk=claim.pk).update(state="skipped")
    plain = assignment_claim_next(reviewer=reviewer, project=project)
    assert plain.item.external_id == "plain"
    assert mark(plain, reviewer, step=2).step == 2
    assert refused_field(plain, reviewer, step=3) == "step"


def refused_field(claim, reviewer, **fields) -> str:
    with pytest.raises(ReviewInvalid) as caught:
        mark(claim, reviewer, **fields)
    return next(iter(caught.value.detail))


def test_only_the_reviewer_holding_the_claim_may_mark(claim, reviewer, second_reviewer):
    with pytest.raises(StaleAssignment):
        mark(claim, second_reviewer, step=CALL_TURN)
    with pytest.raises(StaleAssignment):
        step_verdict_remove(assignment_id=claim.pk, reviewer=second_reviewer, step=CALL_TURN)
    assignment_release(assignment_id=claim.pk, reviewer=reviewer)
    with pytest.raises(StaleAssignment):
        mark(claim, reviewer, step=CALL_TURN)
    assert not StepVerdict.objects.exists()


def test_an_expired_claim_cannot_mark(claim, reviewer):
    Assignment.objects.filter(pk=claim.pk).update(
        lease_expires_at=claim.claimed_at - timedelta(seconds=1)
    )
    with pytest.raises(StaleAssignment):
        mark(claim, reviewer, step=CALL_TURN)


def test_submitting_the_review_attaches_the_marks_and_closes_them(claim, reviewer):
    mark(claim, reviewer, step=CALL_TURN, part="call_0_dose")
    mark(claim, reviewer, step=RESULT_TURN, severity="minor")
    review = review_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=ReviewInput("reject", reason_code="factual_error", severity="major"),
    )
    assert set(StepVerdict.objects.values_list("review_id", flat=True)) == {review.pk}
    assert StepVerdict.history.filter(history_change_reason="Review submitted").count() == 2
    with pytest.raises(StaleAssignment):
        mark(claim, reviewer, step=CALL_TURN)
    claim.item.refresh_from_db()
    assert claim.item.status == ItemStatus.REJECTED


# --- the page and the endpoint -----------------------------------------------


@pytest.fixture
def rita(client, reviewer):
    client.force_login(reviewer)
    return client


def test_review_page_shows_the_conversation_turn_by_turn(rita, project, reviewer):
    factories.ingest_transcript(project, text="<script>alert('x')</script>")
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    content = rita.get(review_url(claim)).content.decode()
    assert "<script>alert" not in content
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in content
    for turn in range(1, FINAL_TURN + 1):
        assert f'id="ws-step-{turn}"' in content
    assert content.count('aria-current="step"') == 1
    assert 'id="ws-step-9" aria-current="step"' in content
    # Tool calls by name with pretty-printed arguments; results folded in <details>.
    assert '<code class="ws-tool-name">dose_table</code>' in content
    assert "{\n  &quot;drug&quot;: &quot;paracetamol&quot;,\n  &quot;group&quot;" in content
    assert '<details class="ws-tool-result"><summary>Result of search_drugs' in content
    assert "acme-agent-2" in content and 'datetime="2026-12-01T09:00:01Z"' in content
    # Step forms on assistant and tool turns only, with their accessible names.
    assert 'id="ws-step-mark-3">Mark step 3 wrong&hellip;' in content
    assert 'id="ws-step-mark-2"' not in content and 'id="ws-step-mark-1"' not in content
    for label in ("Which part of step 3", "Reason for step 3", "Severity of step 3"):
        assert label in content
    assert "Note on step 3" in content and "Save the mark on step 3" in content
    assert "Tool call dose_table (call_0_dose)" in content


def test_posting_a_mark_redirects_to_the_step_and_shows_it(rita, claim):
    response = rita.post(
        steps_url(claim),
        {
            "step_action": "mark",
            "step_index": "3",
            "step_part": "call_0_dose",
            "step_reason": "wrong_entity",
            "step_severity": "critical",
            "step_note": "<b>adult</b> group for a child",
        },
    )
    assert response.status_code == 302
    assert response.url == f"{review_url(claim)}#ws-step-3"
    verdict = StepVerdict.objects.get()
    assert (verdict.step, verdict.part, verdict.reason) == (3, "call_0_dose", "wrong_entity")
    content = rita.get(response.url).content.decode()
    assert "Marked wrong (tool call <code>call_0_dose</code>): wrong_entity, critical" in content
    assert "&lt;b&gt;adult&lt;/b&gt; group" in content
    assert "Remove the mark on step 3 (call_0_dose)" in content
    removed = rita.post(
        steps_url(claim),
        {"step_action": "remove", "step_index": "3", "step_part": "call_0_dose"},
    )
    assert removed.status_code == 302 and not StepVerdict.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"step_index": "42"}, "step_index"),
        ({"step_index": "2"}, "step_index"),
        ({"step_index": "-1"}, "step_index"),
        ({"step_index": "three"}, "step_index"),
        ({"step_index": ""}, "step_index"),
        ({"step_part": "call_x"}, "step_part"),
        ({"step_reason": "nonsense"}, "step_reason"),
        ({"step_severity": "none"}, "step_severity"),
        ({"step_action": "delete_all"}, "step_action"),
    ],
)
def test_a_bad_mark_is_a_400_naming_the_field(rita, claim, data, field):
    form = {
        "step_action": "mark",
        "step_index": "3",
        "step_reason": "factual_error",
        "step_severity": "major",
        **data,
    }
    response = rita.post(steps_url(claim), form)
    assert response.status_code == 400
    assert f'data-field="{field}">{field}: ' in response.content.decode()
    assert not StepVerdict.objects.exists()


def test_a_bad_step_shows_its_error_in_the_open_step_form(rita, claim):
    response = rita.post(
        steps_url(claim),
        {"step_action": "mark", "step_index": "4", "step_reason": "nonsense"},
    )
    content = response.content.decode()
    assert response.status_code == 400
    assert '<details class="ws-step-mark" open>\n      <summary id="ws-step-mark-4">' in content
    assert 'data-field="step_reason">step_reason: Choose one of' in content
    assert 'data-field="step_severity">step_severity: Choose one of' in content
    # The page now sits at the steps URL: the decision form still posts to the review page.
    assert f'<form method="post" action="{review_url(claim)}" id="review-form"' in content


# --- attacker side ------------------------------------------------------------

MARK = {"step_action": "mark", "step_index": "3", "step_reason": "factual_error"}


def test_another_projects_reviewer_gets_404(client, claim, outsider):
    client.force_login(outsider)
    assert client.post(steps_url(claim), {**MARK, "step_severity": "major"}).status_code == 404
    assert not StepVerdict.objects.exists()


def test_a_reviewer_without_the_claim_gets_404(client, claim, second_reviewer):
    client.force_login(second_reviewer)
    assert client.post(steps_url(claim), {**MARK, "step_severity": "major"}).status_code == 404
    assert not StepVerdict.objects.exists()


def test_an_anonymous_user_is_sent_to_the_login(client, claim):
    response = client.post(steps_url(claim), {**MARK, "step_severity": "major"})
    assert response.status_code == 302 and "/login/" in response.url
    assert not StepVerdict.objects.exists()


def test_a_released_claim_cannot_mark_through_the_page(rita, claim, reviewer):
    assignment_release(assignment_id=claim.pk, reviewer=reviewer)
    response = rita.post(steps_url(claim), {**MARK, "step_severity": "major"})
    assert response.status_code == 302
    assert response.url == reverse("admin:reviews_workspace_queue")
    assert not StepVerdict.objects.exists()


def test_a_submitted_claim_cannot_mark_even_with_a_bad_form(rita, claim, reviewer):
    review_submit(assignment_id=claim.pk, reviewer=reviewer, data=ReviewInput("approve"))
    response = rita.post(steps_url(claim), {"step_action": "mark", "step_index": "x"})
    assert response.status_code == 302
    assert response.url == reverse("admin:reviews_workspace_queue")
    assert not StepVerdict.objects.exists()


def test_steps_endpoint_is_post_only(rita, claim):
    assert rita.get(steps_url(claim)).status_code == 405


def test_marks_are_blind_to_the_second_reviewer(double_project, double_reviewers):
    dora, dave, _dina = double_reviewers
    factories.ingest_transcript(double_project)
    first = assignment_claim_next(reviewer=dora, project=double_project)
    mark(first, dora, step=CALL_TURN, note="dora's secret mark")
    second = assignment_claim_next(reviewer=dave, project=double_project)
    client = Client()
    client.force_login(dave)
    content = client.get(review_url(second)).content.decode()
    assert "dora&#x27;s secret mark" not in content and "Marked wrong" not in content


# --- query count --------------------------------------------------------------


@pytest.mark.parametrize(("rounds", "system", "turns"), [(0, False, 2), (6, False, 20)])
def test_review_page_queries_do_not_grow_with_the_turns(
    rita, project, reviewer, rounds, system, turns, django_assert_max_num_queries
):
    item = factories.ingest_transcript(project, rounds=rounds, system=system)
    assert len(item.messages) == turns
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    for step in range(2, turns + 1):
        if item.messages[step - 1]["role"] in ("assistant", "tool"):
            mark(claim, reviewer, step=step)
    # The page's six queries and one for the claim's marks.
    with django_assert_max_num_queries(7) as captured:
        response = rita.get(review_url(claim))
    assert response.status_code == 200, [q["sql"][:200] for q in captured.captured_queries]
    assert response.content.decode().count('class="ws-step-markline"') == (
        StepVerdict.objects.count()
    )


# --- the decision: API and webhook ---------------------------------------------

EXPECTED_STEPS = [
    {
        "step": 3,
        "part": "call_0_dose",
        "reason": "wrong_entity",
        "severity": "critical",
        "note": "adult table for a child",
    },
    {"step": 4, "part": "", "reason": "factual_error", "severity": "minor", "note": ""},
]


def decide_with_marks(claim, reviewer):
    mark(claim, reviewer, step=4, severity="minor")
    mark(
        claim,
        reviewer,
        step=3,
        part="call_0_dose",
        reason="wrong_entity",
        severity="critical",
        note="adult table for a child",
    )
    review_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=ReviewInput(
            "correct",
            corrected_output="At most 3 g per day for this patient.",
            reason_code="factual_error",
            severity="major",
        ),
    )


def test_the_decision_in_the_api_lists_the_marked_steps(
    client_api, project, reviewer, django_assert_max_num_queries
):
    factories.ingest_transcript(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    decide_with_marks(claim, reviewer)
    factories.ingest_transcript(project)  # pending: no decision, no steps
    detail = client_api.get(f"/api/v1/items/{claim.item_id}/").json()
    assert detail["decision"]["verdict"] == "correct"
    assert detail["decision"]["steps"] == EXPECTED_STEPS
    with django_assert_max_num_queries(5):
        listing = client_api.get("/api/v1/items/").json()["results"]
    decisions = {row["id"]: row["decision"] for row in listing}
    assert decisions[claim.item_id]["steps"] == EXPECTED_STEPS
    assert sum(1 for decision in decisions.values() if decision is None) == 1


def test_the_webhook_decision_payload_carries_the_marked_steps(project, reviewer):
    Project.objects.filter(pk=project.pk).update(webhook_url="https://hooks.example.com/hitl")
    project.refresh_from_db()
    factories.ingest_transcript(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    decide_with_marks(claim, reviewer)
    delivery = WebhookDelivery.objects.get(item_id=claim.item_id)
    assert delivery.payload["item"]["decision"]["steps"] == EXPECTED_STEPS


def test_marks_of_an_unsubmitted_or_quarantined_review_are_not_the_decisions(project, reviewer):
    factories.ingest_transcript(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    decide_with_marks(claim, reviewer)
    item = claim.item
    item.refresh_from_db()
    assert decision_steps_of([item])[item.pk] == EXPECTED_STEPS
    Review.objects.filter(item=item).update(
        quarantine=Quarantine.objects.create(
            project=project,
            reviewer=reviewer,
            start=item.created_at,
            end=item.created_at,
            reason="test",
        )
    )
    assert decision_steps_of([item])[item.pk] == []


# --- marks on the adjudication case page and the item's timeline ----------------


def test_marks_show_on_the_case_page_and_the_timeline(
    client, double_project, double_reviewers, django_user_model
):
    dora, dave, _dina = double_reviewers
    item = factories.ingest_transcript(double_project)
    first = assignment_claim_next(reviewer=dora, project=double_project)
    mark(first, dora, step=3, part="call_0_search", note="<i>wrong query</i>")
    review_submit(assignment_id=first.pk, reviewer=dora, data=ReviewInput("approve"))
    second = assignment_claim_next(reviewer=dave, project=double_project)
    mark(second, dave, step=7, reason="hallucination", severity="minor")
    review_submit(
        assignment_id=second.pk,
        reviewer=dave,
        data=ReviewInput("reject", reason_code="hallucination", severity="major"),
    )
    case = AdjudicationCase.objects.get(item=item)
    senior = django_user_model.objects.create_user("sara", password="sara-pass-1", is_staff=True)
    factories.add_member(double_project, senior, "senior")
    client.force_login(senior)
    page = client.get(reverse("admin:adjudication_case", args=[case.pk])).content.decode()
    assert page.count("Steps marked wrong") == 2
    assert "Step 3 (tool call <code>call_0_search</code>): factual_error, major" in page
    assert "&lt;i&gt;wrong query&lt;/i&gt;" in page and "<i>wrong query" not in page
    assert "Step 7: hallucination, minor" in page
    timeline = client.get(reverse("admin:reviews_item_timeline", args=[item.pk])).content
    assert b"Step 3 marked wrong (tool call <code>call_0_search</code>)" in timeline
    assert b"Step 7 marked wrong: hallucination, minor" in timeline
