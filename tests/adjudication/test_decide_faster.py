"""Faster senior decisions: submit-and-next, the compact own decision, reason labels."""

import pytest
from django.urls import reverse

from adjudication.models import AdjudicationCase, CaseClaim, CaseStatus
from reviews.models import ItemStatus

APPROVE = {"verdict": "approve", "severity": "none"}
REJECT = {
    "verdict": "reject",
    "reason_code": "wrong_entity",
    "severity": "major",
    "rubric_scores": {"factuality": 2, "safe": False},
}


def case_url(case_id: int) -> str:
    return reverse("admin:adjudication_case", args=[case_id])


@pytest.fixture
def two_cases(make_reviewed_item):
    make_reviewed_item(APPROVE, REJECT)
    make_reviewed_item(APPROVE, REJECT)
    return list(AdjudicationCase.objects.order_by("pk"))


def test_decide_and_next_lands_on_the_next_claimed_case_in_one_post(client, senior, two_cases):
    client.force_login(senior)
    first, second = two_cases
    client.post(case_url(first.pk), {"action": "claim"})
    claim = CaseClaim.objects.get(case=first, senior=senior)
    response = client.post(
        case_url(first.pk),
        {
            "action": "decide",
            "claim": claim.pk,
            "upheld": "a",
            "rationale": "The output is right.",
            "and_next": "1",
        },
    )
    assert response.status_code == 302 and response.url == case_url(second.pk)
    first.refresh_from_db()
    assert first.status == CaseStatus.DECIDED
    assert CaseClaim.objects.filter(case=second, senior=senior, state="active").exists()

    last_claim = CaseClaim.objects.get(case=second, senior=senior)
    done = client.post(
        case_url(second.pk),
        {
            "action": "decide",
            "claim": last_claim.pk,
            "upheld": "neither",
            "verdict": "reject",
            "reason_code": "unsafe",
            "severity": "critical",
            "rationale": "Unsafe advice.",
            "and_next": "1",
        },
    )
    assert done.status_code == 302 and done.url == reverse("admin:adjudication_queue")
    second.item.refresh_from_db()
    assert second.item.status == ItemStatus.REJECTED
    assert second.item.final_severity == "critical"


def test_the_own_decision_is_one_compact_row_with_labels_and_keys(client, senior, two_cases):
    client.force_login(senior)
    first, _second = two_cases
    client.post(case_url(first.pk), {"action": "claim"})
    page = client.get(case_url(first.pk)).content.decode()
    row = page.split('id="adj-own-row"', 1)[1].split("</fieldset>", 1)[0]
    assert row.count("<select") == 1  # the reason; verdict and severity are chips
    assert 'type="radio" name="verdict" value="reject"' in row
    assert 'type="radio" name="severity" value="critical"' in row
    assert "<kbd>s3</kbd>" in row and "<kbd>e</kbd>" in row
    assert '<option value="wrong_entity">3. Wrong entity</option>' in row
    # Review B's reason is shown by its label, with the code as its tooltip.
    assert 'title="wrong_entity">Wrong entity</dd>' in page
    assert 'id="adj-decide-next"' in page
    assert '<dd class="adj-rubric">factuality 2 · safe no</dd>' in page  # review B's scores
