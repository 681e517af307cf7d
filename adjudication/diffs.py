"""What the case page compares: the text each review would release, and their diffs.

The diff itself is the workspace's (``reviews.diffing.correction_diff``: JSON
by path, text cut to the changed hunks); templates render it with
autoescaping, so untrusted output never becomes markup.
"""

from dataclasses import dataclass

from reviews.diffing import CorrectionDiff, correction_diff, pretty_json
from reviews.models import Review, Verdict


@dataclass(frozen=True)
class Side:
    """One reviewer's decision as the senior sees it."""

    label: str
    review: Review
    released: str | None
    """The text this review would release: None when it rejects the output."""
    diff_from_original: CorrectionDiff | None


@dataclass(frozen=True)
class Comparison:
    original: str
    is_json: bool
    sides: list[Side]
    diff_a_b: CorrectionDiff | None
    """Review A's released text against review B's (None unless both release text)."""


def _display(text: str, is_json: bool) -> str:
    return (pretty_json(text) or text) if is_json else text


def released_text(review: Review, original: str) -> str | None:
    if review.verdict == Verdict.APPROVE:
        return original
    if review.verdict == Verdict.CORRECT:
        return review.corrected_output or ""
    return None


def compare(*, original: str, review_a: Review | None, review_b: Review | None) -> Comparison:
    """Original against A, original against B, and A against B.

    JSON outputs are shown pretty-printed and compared by path; other texts
    word by word, cut to the changed hunks.
    """
    is_json = pretty_json(original) is not None
    shown_original = _display(original, is_json)
    sides = []
    for label, review in (("A", review_a), ("B", review_b)):
        if review is None:
            continue
        released = released_text(review, original)
        shown = None if released is None else _display(released, is_json)
        sides.append(
            Side(
                label=label,
                review=review,
                released=shown,
                diff_from_original=(
                    None if shown is None else correction_diff(shown_original, shown)
                ),
            )
        )
    diff_a_b = None
    if len(sides) == 2 and sides[0].released is not None and sides[1].released is not None:
        diff_a_b = correction_diff(sides[0].released, sides[1].released)
    return Comparison(original=shown_original, is_json=is_json, sides=sides, diff_a_b=diff_a_b)
