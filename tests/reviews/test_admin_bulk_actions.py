"""Bulk actions of the item list: through services, with history, only where allowed.

The attacks are crafted POSTs to the item list, as a browser would send them:
another project's admin naming this project's item ids, and a reviewer asking
for actions of seniors and admins. They change nothing and write no row.
"""

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from adjudication.models import AdjudicationCase
from adjudication.services import reviews_settle
from datasets.models import DatasetExport, DatasetExportItem
from datasets.services import export_create
from datasets.services.build import export_build
from reviews.bulk_actions import services as bulk
from reviews.models import Assignment, AssignmentState, ItemStatus, Review, ReviewItem
from reviews.services.transitions import item_transition
from reviews.workspace.services import assignment_claim_next
from tests import factories
from tests.datasets.factories import reviewed

LIST = reverse("admin:reviews_reviewitem_changelist")
ACTIONS = [
    "send_back_to_queue",
    "reopen_items",
    "assign_to_reviewer",
    "export_selection",
    "delete_items",
]


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user("ada", password="ada-pass-1", is_staff=True)
    factories.add_member(project, user, "admin")
    return user


@pytest.fixture
def other_project(db):
    return factories.make_project(name="Tax advice", slug="tax")


@pytest.fixture
def other_admin(django_user_model, other_project):
    user = django_user_model.objects.create_user("otto", password="otto-pass-1", is_staff=True)
    factories.add_member(other_project, user, "admin")
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _act(client, action: str, items, **extra):
    data = {
        "action": action,
        "index": 0,
        "_selected_action": [str(getattr(i, "pk", i)) for i in items],
        **extra,
    }
    return client.post(LIST, data)


def _writes() -> dict[str, int]:
    """Rows written so far in this transaction, per table (sessions aside)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname <> 'django_session' AND relname NOT LIKE 'axes%%' "
            "AND n_tup_ins + n_tup_upd + n_tup_del > 0"
        )
        return dict(cursor.fetchall())


def test_send_back_releases_claims_and_history_names_the_senior(project, reviewer, senior):
    (item,) = factories.ingest(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == item.pk
    response = _act(_client(senior), "send_back_to_queue", [item])
    assert response.status_code == 302
    item.refresh_from_db()
    claim.refresh_from_db()
    assert (item.status, item.in_queue) == (ItemStatus.PENDING_REVIEW, True)
    assert claim.state == AssignmentState.RELEASED
    latest = item.history.latest()
    assert latest.history_user_id == senior.pk
    assert latest.history_change_reason == "Sent back to the queue by sena"
    assert claim.history.latest().history_user_id == senior.pk


def test_reopen_needs_a_reason_and_records_the_senior(project, senior):
    final = reviewed(project)
    client = _client(senior)
    _act(client, "reopen_items", [final])
    final.refresh_from_db()
    assert final.status == ItemStatus.APPROVED  # no reason: nothing happened
    _act(client, "reopen_items", [final], reason="Wrong dose approved")
    final.refresh_from_db()
    assert final.status == ItemStatus.IN_ADJUDICATION
    latest = final.history.latest()
    assert latest.history_user_id == senior.pk
    assert "Wrong dose approved" in latest.history_change_reason


def test_assign_gives_the_named_reviewer_a_claim_and_refuses_outsiders(
    project, reviewer, senior, other_admin
):
    first, second = factories.ingest(project, factories.item_payload(), factories.item_payload())
    client = _client(senior)
    _act(client, "assign_to_reviewer", [first], reviewer="otto")
    assert not Assignment.objects.exists()
    _act(client, "assign_to_reviewer", [first, second], reviewer="rita")
    claims = Assignment.objects.filter(reviewer=reviewer, state=AssignmentState.ACTIVE)
    assert {claim.item_id for claim in claims} == {first.pk, second.pk}
    history = Assignment.history.filter(item_id=first.pk).get()
    assert history.history_user_id == senior.pk
    assert history.history_change_reason == "Assigned to rita by sena"
    first.refresh_from_db()
    assert first.status == ItemStatus.IN_REVIEW
    # The reviewer's next claim is the item they were given.
    assert assignment_claim_next(reviewer=reviewer, project=project).item_id in {
        first.pk,
        second.pk,
    }


def test_delete_is_for_project_admins_and_leaves_a_history_row(project, senior, project_admin):
    keep, gone = factories.ingest(project, factories.item_payload(), factories.item_payload())
    exported = reviewed(project)
    _act(_client(senior), "delete_items", [gone])
    assert ReviewItem.objects.filter(pk=gone.pk).exists()

    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    assert export_build(export_id=export.pk).is_built
    _act(_client(project_admin), "delete_items", [gone, exported])
    assert not ReviewItem.objects.filter(pk=gone.pk).exists()
    assert ReviewItem.objects.filter(pk=exported.pk).exists()  # in an export: kept
    assert ReviewItem.objects.filter(pk=keep.pk).exists()
    deleted = ReviewItem.history.filter(id=gone.pk, history_type="-").get()
    assert deleted.history_user_id == project_admin.pk


def test_export_of_the_selection_holds_only_the_chosen_items(
    project, project_admin, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.RQ_INLINE = True
    settings.HITL_EXPORT_DIR = tmp_path
    chosen = [reviewed(project) for _ in range(3)]
    reviewed(project)  # final too, but not chosen
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(
            _client(project_admin), "export_selection", chosen, export_format="sft_chat"
        )
    assert response.status_code == 302
    export = DatasetExport.objects.get()
    assert export.filters["item_ids"] == sorted(item.pk for item in chosen)
    export.refresh_from_db()
    assert export.is_built, export.error
    exported = set(
        DatasetExportItem.objects.filter(export=export).values_list("item_id", flat=True)
    )
    assert exported == {item.pk for item in chosen}


@pytest.mark.parametrize("action", ACTIONS)
def test_another_projects_admin_naming_our_item_ids_changes_nothing(
    action, project, reviewer, other_admin
):
    (waiting,) = factories.ingest(project)
    final = reviewed(project)
    assignment_claim_next(reviewer=reviewer, project=project)
    client = _client(other_admin)
    before = _writes()
    response = _act(
        client,
        action,
        [waiting, final],
        reason="because",
        reviewer="rita",
        export_format="sft_chat",
    )
    assert response.status_code in (200, 302)
    assert _writes() == before
    assert ReviewItem.objects.filter(pk__in=[waiting.pk, final.pk]).count() == 2
    assert not DatasetExport.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_a_reviewer_cannot_use_seniors_or_admins_actions(
    action, project, reviewer, second_reviewer
):
    (waiting,) = factories.ingest(project)
    final = reviewed(project)
    assignment_claim_next(reviewer=second_reviewer, project=project)
    client = _client(reviewer)
    before = _writes()
    _act(
        client,
        action,
        [waiting, final],
        reason="because",
        reviewer="rita",
        export_format="sft_chat",
    )
    assert _writes() == before


def test_a_senior_acts_only_on_the_projects_where_they_are_senior(project, senior, other_project):
    factories.add_member(other_project, senior, "reviewer")
    mine = reviewed(project)
    elsewhere = reviewed(other_project)
    _act(_client(senior), "reopen_items", [mine, elsewhere], reason="check again")
    mine.refresh_from_db()
    elsewhere.refresh_from_db()
    assert mine.status == ItemStatus.IN_ADJUDICATION
    assert elsewhere.status == ItemStatus.APPROVED


def test_the_services_refuse_on_their_own_whatever_the_page_offered(
    project, reviewer, second_reviewer
):
    """Without the admin's action gating, the services still check each item's project."""
    (waiting,) = factories.ingest(project)
    final = reviewed(project)
    ids = [waiting.pk, final.pk]
    before = _writes()
    outcomes = [
        bulk.items_requeue(user=reviewer, item_ids=ids),
        bulk.items_reopen(user=reviewer, item_ids=ids, reason="x"),
        bulk.items_assign(user=reviewer, item_ids=ids, reviewer=second_reviewer),
        bulk.items_delete(user=reviewer, item_ids=ids),
        bulk.items_export(user=reviewer, item_ids=ids, format="sft_chat")[1],
    ]
    for outcome in outcomes:
        assert outcome.done == []
        assert set(outcome.refused) == set(ids)
    assert _writes() == before


def test_delete_takes_an_items_adjudication_case_with_it(
    project, reviewer, second_reviewer, project_admin
):
    (disputed,) = factories.ingest(project)
    with transaction.atomic():
        disputed = ReviewItem.objects.select_for_update().get(pk=disputed.pk)
        item_transition(item=disputed, to_status=ItemStatus.IN_REVIEW, reason="claimed")
        reviews = [
            Review.objects.create(item=disputed, reviewer=reviewer, verdict="approve"),
            Review.objects.create(
                item=disputed,
                reviewer=second_reviewer,
                verdict="reject",
                reason_code="factual_error",
                severity="major",
            ),
        ]
        reviews_settle(item=disputed, reviews=reviews, user=second_reviewer)
    assert AdjudicationCase.objects.filter(item=disputed).exists()
    response = _act(_client(project_admin), "delete_items", [disputed])
    assert response.status_code == 302
    assert not ReviewItem.objects.filter(pk=disputed.pk).exists()
    assert not AdjudicationCase.objects.exists()
    assert ReviewItem.history.filter(id=disputed.pk, history_type="-").get().history_user_id == (
        project_admin.pk
    )
