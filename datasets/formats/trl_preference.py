"""TRL preference JSONL from comparisons: one line per ordered pair the decision implies.

TRL's preference type, conversational with explicit prompt
(huggingface.co/docs/trl/dataset_formats): ``prompt`` the messages up to the
final user turn (system and history included), ``chosen`` and ``rejected``
one assistant message each. ``chosen`` is the gold answer: the winning
candidate's output, or the reviewer's correction of it; ``rejected`` each other
candidate, and the winner's own output when it was corrected. Ties and all bad
give no line and are counted in the manifest (``tie``, ``all_bad``).
"""

from collections.abc import Callable

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, register
from datasets.formats.preference import assistant_turn, chat_prompt, pair_check, repeat_key
from datasets.models import DatasetExport
from datasets.selectors import candidate_rows
from reviews.models import ItemKind, ItemStatus

FIELDS = ("id", "prompt", "messages_json", "final_preference", "final_output", "candidates__output")


def trl_preference_line(
    *, prompt: str, messages: list, preference: str, chosen: str | None, rejected: str
) -> bytes:
    """One TRL preference line (conversational, explicit prompt); ``SkipRow`` if no pair."""
    pair_check(preference=preference, chosen=chosen, rejected=rejected)
    return (
        dumps(
            {
                "prompt": chat_prompt(prompt=prompt, messages=messages, is_transcript=False),
                "chosen": assistant_turn(chosen),
                "rejected": assistant_turn(rejected),
            }
        )
        + b"\n"
    )


def rows(export: DatasetExport) -> QuerySet:
    return candidate_rows(export, FIELDS)


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    line = trl_preference_line
    return lambda row: line(
        prompt=row[1], messages=loads(row[2]), preference=row[3], chosen=row[4], rejected=row[5]
    )


def dedupe_key(row: Row) -> bytes | None:
    """Prompt, history and both outputs: the same pair twice teaches nothing new."""
    return None if row[4] is None else repeat_key(row[2], row[1], row[4], row[5])


SPEC = register(
    ExportFormatSpec(
        key="trl_preference",
        label="Preference pairs JSONL from comparisons (TRL)",
        statuses=frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED}),
        default_statuses=(ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED),
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
        dedupe_key=dedupe_key,
        item_kinds=frozenset({ItemKind.COMPARISON.value}),
    )
)
