"""The cached history manager stands in for django-simple-history's own ``__get__``."""

import inspect

from reviews.history_manager import ORIGINAL_GET
from reviews.models import ReviewItem
from tests.factories import ingest, item_payload, make_project


def test_the_replaced_get_is_still_what_simple_history_does():
    # An upgrade that changes how the descriptor builds its manager must be looked at.
    body = inspect.getsource(ORIGINAL_GET)
    assert "self.manager_class.from_queryset(self.queryset_class)" in body
    assert "(\n            self.model, instance\n        )" in body


def test_history_managers_share_one_class_and_stay_bound_to_their_instance(db):
    first, second = ingest(
        make_project(slug="hist"), item_payload(external_id="h-1"), item_payload(external_id="h-2")
    )
    assert type(first.history) is type(second.history) is type(ReviewItem.history)
    assert first.history.instance == first and second.history.instance == second
    assert list(first.history.values_list("id", flat=True)) == [first.pk]
    assert ReviewItem.history.filter(id=second.pk).count() == 1
