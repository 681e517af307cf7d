"""The adjudication admin pages: queue, case page, decision, reopen, agreement report."""

import pytest
from django.urls import reverse

from adjudication.models import AdjudicationCase, CaseClaim, CaseStatus
from adjudication.services import case_claim_next
from reviews.models import ItemStatus, ProjectMembership
from reviews.services.accounts import user_roles_sync
from tests import factories

APPROVE = {"verdict": "approve", "severity": "none"}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def correct(text: str, severity: str = "minor") -> dict:
    return {
        "verdict": "correct",
        "corrected_output": text,
        "reason_code": "factual_error",
        "note": XSS,
        "severity": severity,
    }


@pytest.fixture
def senior_client(client, senior):
    client.force_login(senior)
    return client


@pytest.fixture
def disputed(make_reviewed_item):
    """An item whose output, corrections and notes are hostile markup."""
    item = make_reviewed_item(
        APPROVE, correct(f"Max 3 g a day. {XSS}", "critical"), output=f"Max 4 g a day. {XSS}"
    )
    return AdjudicationCase.objects.get(item=item)


def case_url(case) -> str:
    return reverse("admin:adjudication_case", args=[case.pk])


def test_queue_lists_open_cases_in_a_bounded_number_of_queries(
    make_reviewed_item, senior_client, django_assert_max_num_queries
):
    for _ in range(12):
        make_reviewed_item(APPROVE, correct("x"))
    with django_assert_max_num_queries(12):
        response = senior_client.get(reverse("admin:adjudication_queue"))
    assert response.status_code == 200
    assert response.content.count(b'href="/admin/adjudication/adjudicationcase/') >= 12


def test_plain_reviewers_may_not_open_adjudication_pages(client, reviewer, disputed):
    client.force_login(reviewer)
    assert client.get(reverse("admin:adjudication_queue")).status_code == 403
    assert client.get(case_url(disputed)).status_code == 403
    assert client.get(reverse("admin:adjudication_agreement")).status_code == 403


def test_case_page_shows_both_reviews_escaped(senior_client, disputed):
    response = senior_client.get(case_url(disputed))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert 'id="adj-review-a"' in body and 'id="adj-review-b"' in body
    assert "<del>4</del><ins>3</ins>" in body
    assert 'id="adj-claim"' in body


def test_claim_and_decide_through_the_case_page(senior_client, senior, disputed):
    response = senior_client.post(case_url(disputed), {"action": "claim"})
    assert response.status_code == 302
    claim = CaseClaim.objects.get(case=disputed, senior=senior)
    page = senior_client.get(case_url(disputed)).content.decode()
    assert 'id="adj-form"' in page

    missing = senior_client.post(
        case_url(disputed), {"action": "decide", "claim": claim.pk, "upheld": "b", "rationale": ""}
    )
    assert missing.status_code == 200
    assert "the rationale is required" in missing.content.decode()
    disputed.refresh_from_db()
    assert disputed.status == CaseStatus.OPEN

    done = senior_client.post(
        case_url(disputed),
        {"action": "decide", "claim": claim.pk, "upheld": "b", "rationale": "B read the label."},
    )
    assert done.status_code == 302
    disputed.refresh_from_db()
    disputed.item.refresh_from_db()
    assert disputed.status == CaseStatus.DECIDED
    assert disputed.item.status == ItemStatus.CORRECTED
    assert disputed.item.final_output.startswith("Max 3 g a day.")

    again = senior_client.post(
        case_url(disputed),
        {"action": "decide", "claim": claim.pk, "upheld": "a", "rationale": "Changed my mind."},
        follow=True,
    )
    assert "already decided" in again.content.decode()
    disputed.item.refresh_from_db()
    assert disputed.item.status == ItemStatus.CORRECTED


def test_own_decision_errors_are_shown_per_field(senior_client, senior, disputed):
    claim = case_claim_next(user=senior)
    response = senior_client.post(
        case_url(disputed),
        {
            "action": "decide",
            "claim": claim.pk,
            "upheld": "neither",
            "verdict": "correct",
            "final_output": "",
            "reason_code": "",
            "severity": "",
            "rationale": "Neither is right.",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"final_output", "reason_code", "severity"}


def test_a_senior_who_reviewed_the_item_sees_a_refusal(client, reviewer, double_project, disputed):
    ProjectMembership.objects.filter(project=double_project, user=reviewer).update(role="senior")
    client.force_login(reviewer)
    page = client.get(case_url(disputed)).content.decode()
    assert 'id="adj-refused"' in page
    assert client.post(case_url(disputed), {"action": "claim"}).status_code == 403


def test_reopen_through_the_admin(senior_client, make_reviewed_item):
    item = make_reviewed_item(APPROVE, APPROVE)
    url = reverse("admin:adjudication_reopen", args=[item.pk])
    lookup = senior_client.get(
        reverse("admin:adjudication_reopen_lookup"),
        {"project": item.project_id, "external_id": item.external_id},
    )
    assert lookup.status_code == 302 and lookup["Location"] == url
    refused = senior_client.post(url, {"reason": "   "})
    assert refused.status_code == 200
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    response = senior_client.post(url, {"reason": "The client flagged a wrong dose."})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    case = AdjudicationCase.objects.get(item=item, status=CaseStatus.OPEN)
    assert response["Location"] == case_url(case)


def test_item_page_offers_reopen_to_seniors_of_final_items_only(
    client, senior, reviewer, double_project, make_reviewed_item
):
    user_roles_sync(user=senior)
    senior_client = client
    senior_client.force_login(senior)
    final = make_reviewed_item(APPROVE, APPROVE)
    reopen = reverse("admin:adjudication_reopen", args=[final.pk]).encode()
    page = senior_client.get(reverse("admin:reviews_reviewitem_change", args=[final.pk]))
    assert page.status_code == 200 and reopen in page.content
    (pending,) = factories.ingest(double_project)
    assert pending.status == ItemStatus.PENDING_REVIEW
    page = senior_client.get(reverse("admin:reviews_reviewitem_change", args=[pending.pk]))
    assert page.status_code == 200 and b"/reopen/" not in page.content
    user_roles_sync(user=reviewer)
    client.force_login(reviewer)
    page = client.get(reverse("admin:reviews_reviewitem_change", args=[final.pk]))
    assert page.status_code == 200 and reopen not in page.content


def test_agreement_report_renders_the_figures(senior_client, make_reviewed_item):
    make_reviewed_item(APPROVE, APPROVE)
    make_reviewed_item(APPROVE, correct("x"))
    response = senior_client.get(reverse("admin:adjudication_agreement"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="adj-items">2<' in body
    assert "50.0" in body
    bad = senior_client.get(
        reverse("admin:adjudication_agreement"), {"start": "2026-02-01", "end": "2026-01-01"}
    )
    assert bad.status_code == 200
    assert "must not be after the end" in bad.content.decode()


def test_case_list_is_read_only_for_seniors(senior_client, disputed):
    response = senior_client.get(reverse("admin:adjudication_adjudicationcase_changelist"))
    assert response.status_code == 200
    assert b"Adjudication queue" in response.content
    add = senior_client.get(reverse("admin:adjudication_adjudicationcase_add"))
    assert add.status_code == 403


def test_other_projects_seniors_cannot_see_the_case(client, django_user_model, disputed):
    other = factories.make_project()
    stranger = django_user_model.objects.create_user("stan", is_staff=True)
    factories.add_member(other, stranger, "senior")
    client.force_login(stranger)
    assert client.get(case_url(disputed)).status_code == 403
