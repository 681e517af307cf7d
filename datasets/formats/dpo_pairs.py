"""DPO pairs JSONL: TRL preference lines (conversational, explicit prompt) from corrections.

The reviewer's correction is ``chosen``, the model's output ``rejected``.
"""

from collections.abc import Callable

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, SkipRow, register
from datasets.formats.chat import chat_history, dedupe_key
from datasets.models import DatasetExport
from datasets.selectors import item_rows
from reviews.models import ItemStatus

FIELDS = ("id", "prompt", "messages_json", "output", "final_output", "is_transcript")


def dpo_line(
    *, prompt: str, messages: list, chosen: str | None, rejected: str, is_transcript: bool = False
) -> bytes:
    """One TRL preference line in the conversational format (explicit prompt).

    Of a transcript the prompt is the conversation before its final turn (which
    already holds the user's last message); else the history, then ``prompt``.
    """
    if chosen is None or not chosen.strip():
        raise SkipRow("empty_gold_output")
    if chosen == rejected:
        raise SkipRow("chosen_equals_rejected")
    if is_transcript:
        if not isinstance(messages, list) or not messages:
            raise SkipRow("malformed_messages")
        turns = chat_history(messages[:-1], assistant_weight=None)
    else:
        turns = chat_history(messages, assistant_weight=None)
        turns.append({"role": "user", "content": prompt})
    return (
        dumps(
            {
                "prompt": turns,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
        + b"\n"
    )


def rows(export: DatasetExport) -> QuerySet:
    return item_rows(export, FIELDS)


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    line = dpo_line
    return lambda row: line(
        prompt=row[1],
        messages=loads(row[2]),
        chosen=row[4],
        rejected=row[3],
        is_transcript=row[5],
    )


def repeat_key(row: Row) -> bytes | None:
    """Prompt, history and gold output, as for SFT."""
    gold = row[4]
    return None if gold is None else dedupe_key(row[1], row[2], gold)


SPEC = register(
    ExportFormatSpec(
        key="dpo_pairs",
        label="DPO preference pairs JSONL (TRL)",
        statuses=frozenset({ItemStatus.CORRECTED}),
        default_statuses=(ItemStatus.CORRECTED,),
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
        dedupe_key=repeat_key,
    )
)
