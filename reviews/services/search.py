"""The item search's own column: reviewers' notes copied onto the item they are about."""

from django.db.models import Value
from django.db.models.functions import Concat

from reviews.models import ReviewItem


def item_notes_append(*, item: ReviewItem, note: str) -> None:
    """Add a reviewer's ``note`` to ``item.review_notes`` (one note a line), for the search.

    Called by the review service, in its transaction, holding the item's row
    lock, once the note may be seen (blind review: when every required review
    is in, or for an audit review at once); the in-memory item follows so a later save of
    it keeps the note. No history row: the note's own (``Review``) has one.
    """
    note = note.strip()
    if not note:
        return
    separator = "\n" if item.review_notes else ""
    ReviewItem.objects.filter(pk=item.pk).update(
        review_notes=Concat("review_notes", Value(separator + note))
    )
    item.review_notes = f"{item.review_notes}{separator}{note}"
