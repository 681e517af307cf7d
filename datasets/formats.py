"""Line encoders for each export format. Pure functions of the stored values.

Every encoder returns the exact bytes of one line, so the same rows always give
the same file. Stored text is model output and reviewer input: it is
JSON-escaped (or CSV-quoted and neutralised), never interpreted.
"""

import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from datasets.models import Split

# OpenAI chat fine-tuning roles this exporter can write. Stored "tool" turns
# carry no tool_call_id, which the format requires, so such rows are skipped.
CHAT_ROLES = frozenset({"system", "user", "assistant"})
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TRIPLET_COLUMNS = (
    "item_id",
    "external_id",
    "project",
    "attribute",
    "old_value",
    "new_value",
    "reason",
    "severity",
    "reviewer",
    "timestamp",
)


class SkipRow(Exception):
    """A source row the format cannot represent; counted in the manifest by reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split_of(*, seed: int, item_id: int, validation_ratio: float) -> str:
    """The item's split: a hash of seed and item id, so it never moves as data grows."""
    if validation_ratio <= 0.0:
        return Split.TRAIN.value
    digest = hashlib.blake2b(f"{seed}:{item_id}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2**64
    return Split.VALIDATION.value if draw < validation_ratio else Split.TRAIN.value


def dedupe_key(prompt: str, messages_json: str, gold: str) -> bytes:
    """A fingerprint of the prompt (with its stored chat history) and the gold output."""
    return hashlib.blake2b(orjson.dumps([messages_json, prompt, gold]), digest_size=16).digest()


def _history(messages: Any, *, assistant_weight: int | None) -> list[dict]:
    if not isinstance(messages, list):
        raise SkipRow("malformed_messages")
    turns = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise SkipRow("malformed_messages")
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise SkipRow(f"unsupported_role:{role}")
        turn = {"role": role, "content": message["content"]}
        if role == "assistant" and assistant_weight is not None:
            # Earlier assistant turns were never reviewed: keep them as context only.
            turn["weight"] = assistant_weight
        turns.append(turn)
    return turns


def sft_line(*, prompt: str, messages: list, gold: str | None) -> bytes:
    """One OpenAI chat fine-tuning line: history, the prompt, the gold assistant turn."""
    if gold is None or not gold.strip():
        raise SkipRow("empty_gold_output")
    turns = _history(messages, assistant_weight=0)
    turns.append({"role": "user", "content": prompt})
    turns.append({"role": "assistant", "content": gold})
    return orjson.dumps({"messages": turns}) + b"\n"


def dpo_line(*, prompt: str, messages: list, chosen: str | None, rejected: str) -> bytes:
    """One TRL preference line in the conversational format (explicit prompt)."""
    if chosen is None or not chosen.strip():
        raise SkipRow("empty_gold_output")
    if chosen == rejected:
        raise SkipRow("chosen_equals_rejected")
    turns = _history(messages, assistant_weight=None)
    turns.append({"role": "user", "content": prompt})
    return (
        orjson.dumps(
            {
                "prompt": turns,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
        + b"\n"
    )


def triplet_record(row: Sequence[Any]) -> dict[str, Any]:
    """A triplet source row (in TRIPLET_COLUMNS order) as a JSON-ready dict."""
    return dict(zip(TRIPLET_COLUMNS, row, strict=True))


def triplet_jsonl_line(row: Sequence[Any]) -> bytes:
    return orjson.dumps(triplet_record(row)) + b"\n"


def neutralise_csv_cell(value: Any) -> str:
    """Text a spreadsheet will not evaluate: a leading = + - @ (or tab/CR) gets a quote."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(CSV_FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_header() -> bytes:
    return _csv_bytes([TRIPLET_COLUMNS])


def triplet_csv_lines(rows: list[Sequence[Any]]) -> bytes:
    return _csv_bytes([[neutralise_csv_cell(value) for value in row] for row in rows])


def _csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    return buffer.getvalue().encode()


def review_log_line(item: dict[str, Any], reviews: list[dict[str, Any]]) -> bytes:
    """One teacher output with its human verdict(s), for distillation and error analysis."""
    return orjson.dumps({**item, "reviews": reviews}) + b"\n"
