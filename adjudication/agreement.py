"""When two reviews agree: pure rules, no database."""

import json
import math
from typing import Any

from reviews.models import Verdict


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and trim the ends."""
    return " ".join(text.split())


def is_json_document(text: str | None) -> bool:
    """True when ``text`` parses as a JSON object or array (a structured output)."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return False
    return isinstance(value, dict | list)


class _Unparsable:
    """Marker for text that is not JSON; never equal to anything."""


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _Unparsable()


def json_equal(left: Any, right: Any) -> bool:
    """Equality of parsed JSON values, stricter than Python's ``==``.

    ``true`` is not ``1`` and ``1`` is ``1.0`` (JSON has one number type);
    object key order does not matter, array order does.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        if isinstance(left, float) and math.isnan(left):
            return False
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, str | type(None)) and isinstance(right, str | type(None)):
        return left == right
    return False


def outputs_equal(*, original: str, left: str, right: str) -> bool:
    """Whether two corrected outputs say the same thing.

    When the original output is a JSON document both corrections are compared
    as parsed JSON (a correction that does not parse equals nothing); otherwise
    as text after whitespace normalisation.
    """
    if is_json_document(original):
        return json_equal(_parse(left), _parse(right))
    return normalise_whitespace(left) == normalise_whitespace(right)


def reviews_agree(*, original: str, verdict_a: str, output_a, verdict_b: str, output_b) -> bool:
    """Two reviews agree when their verdicts match and, for corrections, their outputs do."""
    if verdict_a != verdict_b:
        return False
    if verdict_a != Verdict.CORRECT:
        return True
    return outputs_equal(original=original, left=output_a or "", right=output_b or "")


def preferences_agree(*, review_a, review_b) -> bool:
    """Two preferences on a comparison agree: the same choice (winner, tie, all bad), the
    same winner, and for a winner the same verdict and correction by the rule above
    (the winner's output standing for the original)."""
    if review_a.preference != review_b.preference or review_a.winner_id != review_b.winner_id:
        return False
    original = review_a.winner.output if review_a.winner_id is not None else ""
    return reviews_agree(
        original=original,
        verdict_a=review_a.verdict,
        output_a=review_a.corrected_output,
        verdict_b=review_b.verdict,
        output_b=review_b.corrected_output,
    )
