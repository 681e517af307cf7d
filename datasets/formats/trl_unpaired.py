"""TRL unpaired preference JSONL (KTO) from the verdicts on single outputs.

TRL's unpaired preference type, conversational (huggingface.co/docs/trl/dataset_formats):
``prompt`` the messages up to the final user turn, ``completion`` one
assistant message, ``label`` a boolean. An approved output is ``true``, a
rejected one ``false``; a corrected item gives two lines, its original output
``false`` and then the correction ``true``.
"""

from collections.abc import Callable

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, SkipRow, register
from datasets.formats.preference import assistant_turn, chat_prompt, repeat_key
from datasets.models import DatasetExport
from datasets.selectors import verdict_rows
from reviews.models import ItemKind, ItemStatus

# The item's columns; verdict_rows appends text, label and part (then the history id).
FIELDS = ("id", "prompt", "messages_json", "is_transcript")


def trl_unpaired_line(
    *, prompt: str, messages: list, is_transcript: bool, completion: str | None, label: bool
) -> bytes:
    """One TRL unpaired preference line (conversational)."""
    if completion is None or not completion.strip():
        raise SkipRow("empty_completion")
    turns = chat_prompt(prompt=prompt, messages=messages, is_transcript=is_transcript)
    return (
        dumps({"prompt": turns, "completion": assistant_turn(completion), "label": bool(label)})
        + b"\n"
    )


def rows(export: DatasetExport) -> QuerySet:
    return verdict_rows(export, FIELDS)


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    line = trl_unpaired_line
    return lambda row: line(
        prompt=row[1],
        messages=loads(row[2]),
        is_transcript=row[3],
        completion=row[4],
        label=row[5],
    )


def dedupe_key(row: Row) -> bytes | None:
    """Prompt, history, completion and label."""
    return None if row[4] is None else repeat_key(row[2], row[1], row[4], bool(row[5]))


SPEC = register(
    ExportFormatSpec(
        key="trl_unpaired",
        label="Unpaired preference JSONL for KTO (TRL)",
        statuses=frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED}),
        default_statuses=(ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED),
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
        dedupe_key=dedupe_key,
        item_kinds=frozenset({ItemKind.SINGLE.value}),
    )
)
