"""OpenAI preference fine-tuning JSONL (DPO) from comparisons and from corrections.

OpenAI's preference format (platform.openai.com/docs/guides/direct-preference-optimization):
``input`` holds ``messages`` (the conversation up to the final user turn, in
the chat fine-tuning shape, tool calls included) and ``tools`` when the item
has them; ``preferred_output`` and ``non_preferred_output`` one assistant
message each. A comparison gives a line per ordered pair its decision implies
(see ``preference``); a corrected single item gives one, the correction
preferred over the model's output. Ties and all bad are counted, not written.
"""

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, SkipRow, register
from datasets.formats.chat import openai_message
from datasets.formats.preference import assistant_turn, pair_check, repeat_key
from datasets.models import DatasetExport
from datasets.selectors import candidate_rows, correction_rows
from reviews.models import ItemKind, ItemStatus

# Candidate rows and corrected items, column for column (then the history id).
ITEM_FIELDS = (
    "id",
    "prompt",
    "messages_json",
    "tools_json",
    "is_transcript",
    "final_preference",
    "final_output",
)
CANDIDATE_FIELDS = (*ITEM_FIELDS, "candidates__output", "candidates__position")
CORRECTION_FIELDS = (*ITEM_FIELDS, "output", "position")


def openai_preference_line(
    *,
    prompt: str,
    messages: Any,
    tools: list | None,
    is_transcript: bool,
    preference: str,
    preferred: str | None,
    non_preferred: str | None,
) -> bytes:
    """One OpenAI preference line; ``SkipRow`` for no pair or a history it cannot hold."""
    pair_check(preference=preference, chosen=preferred, rejected=non_preferred)
    if not isinstance(messages, list):
        raise SkipRow("malformed_messages")
    if is_transcript:
        if not messages:
            raise SkipRow("malformed_messages")
        history = messages[:-1]
    else:
        history = [*messages, {"role": "user", "content": prompt}]
    line_input: dict[str, Any] = {"messages": [openai_message(m) for m in history]}
    if tools:
        line_input["tools"] = tools
    return (
        dumps(
            {
                "input": line_input,
                "preferred_output": assistant_turn(preferred),
                "non_preferred_output": assistant_turn(non_preferred),
            }
        )
        + b"\n"
    )


def rows(export: DatasetExport) -> QuerySet:
    pairs = candidate_rows(export, CANDIDATE_FIELDS).order_by()
    corrections = correction_rows(export, CORRECTION_FIELDS).order_by()
    return pairs.union(corrections, all=True).order_by("id", "candidates__position")


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    line = openai_preference_line

    def encode(row: Row) -> bytes:
        _item, prompt, messages, tools, is_transcript, preference, preferred, output = row[:8]
        return line(
            prompt=prompt,
            messages=loads(messages),
            tools=loads(tools) if tools else None,
            is_transcript=is_transcript,
            preference=preference,
            preferred=preferred,
            non_preferred=output,
        )

    return encode


def dedupe_key(row: Row) -> bytes | None:
    """Prompt, history, tools and both outputs."""
    return None if row[6] is None else repeat_key(row[2], row[3], row[1], row[6], row[7])


SPEC = register(
    ExportFormatSpec(
        key="openai_preference",
        label="Preference fine-tuning JSONL (OpenAI DPO)",
        statuses=frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED}),
        default_statuses=(ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED),
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
        dedupe_key=dedupe_key,
        item_kinds=frozenset({ItemKind.SINGLE.value, ItemKind.COMPARISON.value}),
    )
)
