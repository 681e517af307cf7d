"""The comparison form of a submitted item: ``candidates`` instead of ``output``.

Pure functions shared by the fast validator (``reviews.api.validation``) and
the documented serializer (``ItemInputSerializer``), so the two cannot drift.
Errors are in DRF's shape and name the field: ``{"candidates": {"2": {"output":
[...]}}}`` for ``candidates[2].output``.
"""

import math
from typing import Any

from reviews import transcripts
from reviews.jsontext import NOT_FINITE, text_error
from reviews.models import MAX_CANDIDATES, MIN_CANDIDATES

REQUIRED = "This field is required."
NOT_STRING = "Must be a string."
BLANK = "This field may not be blank."
NULL = "This field may not be null."
PER_CANDIDATE = "Not allowed with candidates: give it on each candidate."
LAST_USER_TURN = (
    "With candidates, the last message must be the user turn the candidates answer "
    "(or send prompt, with messages as the history before it)."
)
# (required, max_length or None = the text limit)
CANDIDATE_STRINGS = {
    "output": (True, None),
    "model_name": (True, 200),
    "model_version": (True, 200),
}
# Item fields a comparison gives per candidate instead.
ITEM_LEVEL_FIELDS = ("output", "model_name", "model_version", "confidence")


def comparison_form(raw: Any) -> bool:
    """True when ``raw`` submits a comparison (it carries ``candidates``)."""
    return isinstance(raw, dict) and "candidates" in raw


def string_error(value: Any, *, allow_blank: bool, limit: int) -> str | None:
    if not isinstance(value, str):
        return NOT_STRING
    # Blank as ``not value.strip()`` tells it, without copying the text.
    if not allow_blank and (not value or value.isspace()):
        return BLANK
    if len(value) > limit:
        return f"Ensure this field has no more than {limit} characters."
    return text_error(value)


def confidence_value(value: Any) -> tuple[float | None, str | None]:
    """(confidence, None) for null or a finite number in [0, 1], else (None, message)."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "Must be a number between 0 and 1."
    if isinstance(value, float) and not math.isfinite(value):
        return None, NOT_FINITE
    # Compared before float(): an integer of 400 digits has no float.
    if not 0 <= value <= 1:
        return None, "Must be between 0 and 1."
    return float(value), None


def _same_text(text: str) -> str:
    return " ".join(text.split())


def candidates_clean(value: Any, *, text_limit: int) -> tuple[list[dict] | None, Any]:
    """(clean candidates, None) or (None, errors): 2-4 objects, outputs pairwise different.

    Two outputs that differ only in whitespace count as identical: the reviewer
    could not tell them apart.
    """
    if not isinstance(value, list):
        return None, [f'Expected a list of items but got type "{type(value).__name__}".']
    if len(value) < MIN_CANDIDATES:
        return None, [f"Ensure this field has at least {MIN_CANDIDATES} elements."]
    if len(value) > MAX_CANDIDATES:
        return None, [f"Ensure this field has no more than {MAX_CANDIDATES} elements."]
    clean, errors = [], {}
    seen: dict[str, int] = {}
    for index, candidate in enumerate(value):
        if not isinstance(candidate, dict):
            errors[str(index)] = {"non_field_errors": ["Expected an object with output."]}
            continue
        problems: dict[str, list[str]] = {}
        row: dict[str, Any] = {}
        for name, (required, limit) in CANDIDATE_STRINGS.items():
            if name not in candidate:
                if required:
                    problems[name] = [REQUIRED]
                continue
            text = candidate[name]
            error = (
                NULL
                if text is None
                else string_error(text, allow_blank=False, limit=limit or text_limit)
            )
            if error:
                problems[name] = [error]
            else:
                row[name] = text
        confidence, error = confidence_value(candidate.get("confidence"))
        if error:
            problems["confidence"] = [error]
        row["confidence"] = confidence
        if "output" in row:
            earlier = seen.setdefault(_same_text(row["output"]), index)
            if earlier != index:
                problems["output"] = [f"Identical to candidate {earlier}'s output."]
        if problems:
            errors[str(index)] = problems
        else:
            clean.append(row)
    if errors:
        return None, errors
    return clean, None


def comparison_conversation(raw: dict, *, limits: transcripts.Limits) -> tuple[dict, dict]:
    """(fields, errors) for a comparison's prompt and conversation.

    The prompt form is a single item's (``prompt``, ``messages`` the history).
    The transcript form sends only ``messages``, ending with the user turn the
    candidates answer; it is stored in the prompt form (that turn becomes the
    prompt, the turns before it the history).
    """
    if "prompt" in raw or "messages" not in raw:
        return transcripts.conversation_clean({**raw, "output": ""}, limits=limits)
    fields: dict[str, Any] = {"is_transcript": False}
    errors: dict[str, Any] = {}
    try:
        messages = transcripts.messages_clean(raw["messages"], limits=limits, final_turn=False)
    except transcripts.Invalid as exc:
        errors["messages"] = exc.errors["messages"]
    else:
        last = messages[-1] if messages else None
        if last is None or last["role"] != "user" or not isinstance(last.get("content"), str):
            errors["messages"] = [LAST_USER_TURN]
        else:
            fields["prompt"], fields["messages"] = last["content"], messages[:-1]
    try:
        fields["tools"] = transcripts.tools_clean(raw.get("tools", []), limits=limits)
    except transcripts.Invalid as exc:
        errors["tools"] = exc.errors["tools"]
    if errors:
        return {}, errors
    return fields, {}


def comparison_errors(raw: dict, *, limits: transcripts.Limits) -> tuple[dict, dict]:
    """(fields, errors) of the comparison-specific part of ``raw``: conversation,
    candidates, and no item-level output, model or confidence."""
    fields, errors = comparison_conversation(raw, limits=limits)
    for name in ITEM_LEVEL_FIELDS:
        if name in raw:
            errors[name] = [PER_CANDIDATE]
    candidates, problems = candidates_clean(raw["candidates"], text_limit=limits.text_chars)
    if problems:
        errors["candidates"] = problems
    else:
        fields["candidates"] = candidates
    if "prompt" not in raw and "messages" not in raw:
        errors["prompt"] = [REQUIRED]
    return fields, errors
