import pytest
from django.db import transaction

from adjudication.services import reviews_settle
from reviews.models import ItemStatus, Review, ReviewItem
from reviews.services.transitions import item_transition
from tests import factories


@pytest.fixture
def double_project(project):
    """The gate project, with two blind reviews per item."""
    project.reviews_required = 2
    project.save(update_fields=["reviews_required"])
    return project


@pytest.fixture
def make_reviewed_item(double_project, reviewer, second_reviewer):
    """Ingest an item, store two reviews and settle them as review_submit does."""

    def build(review_a: dict, review_b: dict, **payload) -> ReviewItem:
        (item,) = factories.ingest(double_project, factories.item_payload(**payload))
        with transaction.atomic():
            item = ReviewItem.objects.select_for_update().get(pk=item.pk)
            item_transition(item=item, to_status=ItemStatus.IN_REVIEW, reason="claimed")
            reviews = [
                Review.objects.create(item=item, reviewer=user, **fields)
                for user, fields in ((reviewer, review_a), (second_reviewer, review_b))
            ]
            reviews_settle(item=item, reviews=reviews, user=second_reviewer)
        item.refresh_from_db()
        return item

    return build
