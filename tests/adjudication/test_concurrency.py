"""Concurrent seniors against real PostgreSQL row locks."""

import threading

import pytest
from django.db import connection, transaction

from adjudication.models import AdjudicationCase, CaseStatus
from adjudication.services import case_claim_next, case_decide
from reviews.errors import Conflict
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

APPROVE = {"verdict": "approve", "severity": "none"}
REJECT = {"verdict": "reject", "reason_code": "unsafe", "severity": "critical"}


def run_in_thread(target, *args):
    outcome = {}

    def body():
        try:
            outcome["value"] = target(*args)
        except Exception as exc:  # handed back to the test thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, outcome


@pytest.fixture
def two_seniors(django_user_model, double_project, senior):
    other = django_user_model.objects.create_user("otto", is_staff=True)
    factories.add_member(double_project, other, "senior")
    return senior, other


def test_a_claim_in_progress_is_skipped_not_waited_for(make_reviewed_item, two_seniors):
    first_senior, second_senior = two_seniors
    make_reviewed_item(APPROVE, REJECT)
    make_reviewed_item(APPROVE, REJECT)
    locked, release = threading.Event(), threading.Event()

    def hold_first_case():
        with transaction.atomic():
            claim = case_claim_next(user=first_senior)
            locked.set()
            release.wait(10)
            return claim.case_id

    holder, held = run_in_thread(hold_first_case)
    assert locked.wait(10)
    other, taken = run_in_thread(lambda: case_claim_next(user=second_senior).case_id)
    other.join(5)
    assert not other.is_alive(), "the second senior waited on the first one's row lock"
    release.set()
    holder.join(10)
    assert "error" not in held and "error" not in taken
    assert held["value"] != taken["value"]


def test_two_submits_of_one_decision_record_it_once(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, REJECT)
    claim = case_claim_next(user=senior)
    barrier = threading.Barrier(2)

    def decide(upheld):
        barrier.wait(5)
        return case_decide(
            case=claim.case, claim_id=claim.pk, user=senior, upheld=upheld, rationale="Race."
        )

    threads = [run_in_thread(decide, side) for side in ("a", "b")]
    for thread, _ in threads:
        thread.join(15)
    outcomes = [outcome for _, outcome in threads]
    assert sum("value" in outcome for outcome in outcomes) == 1
    (error,) = [outcome["error"] for outcome in outcomes if "error" in outcome]
    assert isinstance(error, Conflict)
    case = AdjudicationCase.objects.get(item=item)
    assert case.status == CaseStatus.DECIDED
    item.refresh_from_db()
    assert item.history.filter(status__in=["approved", "rejected"]).count() == 1
