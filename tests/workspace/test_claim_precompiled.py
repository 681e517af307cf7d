"""The claim's precompiled statements are the SQL its querysets compile to, and answer alike."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from reviews.models import Assignment, AssignmentState
from reviews.models.items import SUBMITTED_CONTENT_FIELDS
from reviews.workspace import services
from reviews.workspace.services import assignment_claim_next, claimable_items
from tests.workspace.conftest import queue

pytestmark = pytest.mark.django_db


def _orm_statements(*, reviewer, project, now, item_id):
    candidate = (
        claimable_items(reviewer=reviewer, project=project, now=now)
        .defer(*SUBMITTED_CONTENT_FIELDS, "review_notes")
        .select_for_update(skip_locked=True, of=("self",))[:1]
    )
    expired = Assignment.objects.filter(
        item=OuterRef("pk"), state=AssignmentState.ACTIVE, lease_expires_at__lte=now
    )
    recheck = (
        claimable_items(reviewer=reviewer, project=project, now=now)
        .filter(pk=item_id)
        .annotate(stale=Exists(expired))
        .only("pk")
        .order_by()[:1]
    )
    return [q.query.get_compiler(connection=connection).as_sql() for q in (candidate, recheck)]


@pytest.mark.parametrize("required", [1, 2])
def test_same_sql_and_parameters_as_the_querysets(project, reviewer, required):
    project.reviews_required = required
    project.save()
    now = timezone.now()
    candidate, recheck = services._claim_statements(required)
    values = [reviewer.pk, project.pk, now, now - services.SKIP_HIDES_FOR]
    if required > 1:
        values.append(required)
    with transaction.atomic():
        expected = _orm_statements(reviewer=reviewer, project=project, now=now, item_id=-5)
        for statement, args, (sql, params) in zip(
            (candidate, recheck), (values, [-5, *values]), expected, strict=True
        ):
            _compiler, compiled_sql, compiled_params, slots, *_ = statement._compiled("default")
            filled = list(compiled_params)
            for places, value in zip(slots, args, strict=True):
                for place in places:
                    filled[place] = value
            assert compiled_sql == sql
            assert filled == list(params)


def test_claim_skips_held_and_closes_expired_claims(project, reviewer, django_user_model):
    first, second = queue(project, 2)
    other = django_user_model.objects.create_user("other-reviewer", is_staff=True)
    project.memberships.create(user=other, role="reviewer")
    mine = assignment_claim_next(reviewer=reviewer, project=project)
    assert mine.item_id == first.pk
    # The other reviewer walks past the held item to the next one.
    theirs = assignment_claim_next(reviewer=other, project=project)
    assert theirs.item_id == second.pk
    # A claim whose lease ran out is closed when its item is claimed again.
    Assignment.objects.filter(pk=mine.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    Assignment.objects.filter(pk=theirs.pk).update(state=AssignmentState.SUBMITTED)
    again = assignment_claim_next(reviewer=other, project=project)
    assert again.item_id == first.pk
    mine.refresh_from_db()
    assert mine.state == AssignmentState.EXPIRED
