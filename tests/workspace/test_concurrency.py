import threading
from collections import Counter

import pytest
from django.db import connection

from reviews.models import Assignment, ItemStatus, Review, ReviewItem
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.workspace.conftest import queue

THREADS = 20
ITEMS = 120


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_claiming_one_queue_never_share_or_lose_an_item(django_user_model):
    project = factories.make_project(name="Busy", slug="busy")
    items = queue(project, ITEMS)
    reviewers = []
    for n in range(THREADS):
        user = django_user_model.objects.create_user(f"r{n}", is_staff=True)
        factories.add_member(project, user)
        reviewers.append(user)
    start = threading.Barrier(THREADS)
    claimed: list[list[int]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait()
            while True:
                assignment = assignment_claim_next(reviewer=reviewers[index], project=project)
                if assignment is None:
                    return
                claimed[index].append(assignment.item_id)
                review_submit(
                    assignment_id=assignment.pk,
                    reviewer=reviewers[index],
                    data=ReviewInput(verdict="approve"),
                )
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    every_claim = [item_id for per_thread in claimed for item_id in per_thread]
    counts = Counter(every_claim)
    assert max(counts.values()) == 1, "an item was claimed twice"
    assert set(counts) == {item.pk for item in items}, "an item was never claimed"
    assert Assignment.objects.count() == ITEMS
    assert Review.objects.values("item").distinct().count() == ITEMS
    assert ReviewItem.objects.filter(status=ItemStatus.APPROVED).count() == ITEMS
    assert sum(1 for per_thread in claimed if per_thread) > 1, "claims did not run concurrently"
