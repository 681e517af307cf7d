"""Strict parsing of the judge's reply: one JSON object matching the verdict schema.

Anything else (prose, a bare "pass", extra keys, a score outside [0, 1], NaN)
is refused with :class:`JudgeReplyError`; the caller records a judge error and
sends the item to a human.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

LABELS = ("pass", "flag", "fail")
MAX_RATIONALE_CHARS = 4000
MAX_CATEGORIES = 20

# What the backends are asked to produce. Kept to the keywords every structured
# output implementation accepts (OpenAI strict mode, vLLM, Ollama, llama.cpp,
# Anthropic tool input); range and length limits are enforced by VERDICT_SCHEMA.
WIRE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "description": "0 = violates the rubric, 1 = fully meets it"},
        "label": {"type": "string", "enum": list(LABELS)},
        "rationale": {"type": "string", "description": "Why, in a few sentences."},
        "error_categories": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Short snake_case names of the problems found; empty if none.",
        },
    },
    "required": ["score", "label", "rationale", "error_categories"],
    "additionalProperties": False,
}

VERDICT_SCHEMA: dict[str, Any] = {
    **WIRE_SCHEMA,
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "string", "enum": list(LABELS)},
        "rationale": {"type": "string", "maxLength": MAX_RATIONALE_CHARS},
        "error_categories": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "maxItems": MAX_CATEGORIES,
        },
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(VERDICT_SCHEMA)
_FENCE = re.compile(r"\A```(?:json)?\s*\n(?P<body>.*)\n```\Z", re.DOTALL)


class JudgeReplyError(ValueError):
    """The judge's reply is not a valid verdict."""


@dataclass(frozen=True)
class ParsedVerdict:
    score: float
    label: str
    rationale: str
    error_categories: list[str] = field(default_factory=list)


def _refuse_constant(name: str) -> float:
    raise JudgeReplyError(f"The reply contains {name}, which is not a number.")


def parse_verdict_text(text: str) -> ParsedVerdict:
    """Parse a text reply. A reply wholly wrapped in one ```json fence is accepted."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    if not body.startswith("{"):
        raise JudgeReplyError("The reply is not a JSON object.")
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise JudgeReplyError(f"The reply is not valid JSON: {exc}") from exc
    return parse_verdict_object(value)


def parse_verdict_object(value: Any) -> ParsedVerdict:
    """Validate an already decoded reply (e.g. an Anthropic tool input) against the schema."""
    if not isinstance(value, dict):
        raise JudgeReplyError("The reply is not a JSON object.")
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "reply"
        raise JudgeReplyError(f"Invalid verdict at {where}: {error.message}")
    return ParsedVerdict(
        score=float(value["score"]),
        label=value["label"],
        rationale=value["rationale"],
        error_categories=list(value["error_categories"]),
    )
