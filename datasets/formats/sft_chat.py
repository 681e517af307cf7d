"""SFT chat JSONL: OpenAI chat fine-tuning lines from approved and corrected items."""

from collections.abc import Callable

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, SkipRow, register
from datasets.formats.chat import chat_history, dedupe_key
from datasets.models import DatasetExport
from datasets.selectors import item_rows
from reviews.models import ItemStatus

# Chat histories are read as JSON text and decoded here with orjson.
FIELDS = ("id", "prompt", "messages_json", "final_output")


def sft_line(*, prompt: str, messages: list, gold: str | None) -> bytes:
    """One OpenAI chat fine-tuning line: history, the prompt, the gold assistant turn."""
    if gold is None or not gold.strip():
        raise SkipRow("empty_gold_output")
    turns = chat_history(messages, assistant_weight=0)
    turns.append({"role": "user", "content": prompt})
    turns.append({"role": "assistant", "content": gold})
    return dumps({"messages": turns}) + b"\n"


def rows(export: DatasetExport) -> QuerySet:
    return item_rows(export, FIELDS)


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    line = sft_line
    return lambda row: line(prompt=row[1], messages=loads(row[2]), gold=row[3])


def repeat_key(row: Row) -> bytes | None:
    """Prompt, history and gold output: the same pair twice teaches nothing new."""
    gold = row[3]
    return None if gold is None else dedupe_key(row[1], row[2], gold)


SPEC = register(
    ExportFormatSpec(
        key="sft_chat",
        label="SFT chat JSONL (OpenAI fine-tuning)",
        statuses=frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED}),
        default_statuses=(ItemStatus.APPROVED, ItemStatus.CORRECTED),
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
        dedupe_key=repeat_key,
    )
)
