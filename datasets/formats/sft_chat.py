"""SFT chat JSONL: OpenAI chat fine-tuning lines from approved and corrected items.

A line is the whole conversation in OpenAI's fine-tuning format: ``tools`` on
the line when the item has tool definitions, ``tool_calls`` on assistant
messages (arguments as JSON text), ``tool_call_id`` on tool results, and the
final assistant turn replaced by the gold answer (the released output: the
model's own when approved, the reviewer's correction when corrected).

Weights (``weight`` 0 or 1, assistant messages only): an assistant turn marked
wrong by the reviewers (step verdicts) gets 0, and so do the history turns of
an item submitted as prompt and output (they were context, never the work under
review). When a line has any weight, every other assistant turn gets 1.
Exports with ``wrong_steps`` "exclude" never see items with marks
(``datasets.selectors.selected_items``).
"""

from collections.abc import Callable
from hashlib import blake2b
from typing import Any

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, SkipRow, register
from datasets.formats.chat import openai_message
from datasets.models import DatasetExport
from datasets.selectors import item_rows, wrong_steps_by_item
from reviews.models import ItemStatus

# Chat histories and tools are read as JSON text and decoded here with orjson.
FIELDS = ("id", "prompt", "messages_json", "final_output", "is_transcript", "tools_json", "output")
WHOLE_TURN = ""
# History roles a plain line takes as they are: no weight, no tool calls.
PLAIN_ROLES = frozenset({"system", "user"})


def sft_line(
    *,
    prompt: str,
    messages: list,
    gold: str | None,
    is_transcript: bool = False,
    tools: list | None = None,
    output: str | None = None,
    wrong: dict[int, set[str]] | None = None,
) -> bytes:
    """One OpenAI chat fine-tuning line: the conversation, its final turn the gold answer.

    Most lines are plain: a prompt and its gold answer after a history of
    system and user text turns (each with text content), no transcript, tools
    or marks. Those are written here directly, as ``conversation_line`` writes
    them (the same dicts, so the same bytes; ``tests/datasets/
    test_sft_fast_path.py`` holds the two side by side); every other line is
    ``conversation_line``'s. This runs once per exported row.
    """
    if (
        not (is_transcript or wrong or tools)
        and type(prompt) is str
        and type(gold) is str
        and type(messages) is list
    ):
        turns = []
        for message in messages:
            if type(message) is not dict:
                break
            role = message.get("role")
            content = message.get("content")
            if role not in PLAIN_ROLES or type(content) is not str:
                break
            turns.append({"role": role, "content": content})
        else:
            if gold and not gold.isspace():
                turns.append({"role": "user", "content": prompt})
                turns.append({"role": "assistant", "content": gold})
                # Copied with its newline: orjson's own result holds a 4 KB buffer,
                # and a chunk's lines are kept until it is written.
                return dumps({"messages": turns}) + b"\n"
    return conversation_line(
        prompt=prompt,
        messages=messages,
        gold=gold,
        is_transcript=is_transcript,
        tools=tools,
        output=output,
        wrong=wrong,
    )


def conversation_line(
    *,
    prompt: str,
    messages: list,
    gold: str | None,
    is_transcript: bool = False,
    tools: list | None = None,
    output: str | None = None,
    wrong: dict[int, set[str]] | None = None,
) -> bytes:
    """Any line of ``sft_line``: the conversation, its final turn the gold answer.

    ``messages`` as stored: of a transcript the whole conversation (its last
    message the turn under review), else the history before ``prompt``.
    ``wrong`` maps step numbers (from 1) to the parts marked wrong ("" the
    whole turn, else tool call ids). ``output`` is the model's own final text:
    a final turn marked wrong and released unchanged teaches nothing, so it is
    skipped.
    """
    if not isinstance(messages, list):
        raise SkipRow("malformed_messages")
    wrong = wrong or {}
    if is_transcript:
        if not messages:
            raise SkipRow("malformed_messages")
        history, final = messages[:-1], messages[-1]
    else:
        history = [*messages, {"role": "user", "content": prompt}]
        final = {"role": "assistant", "content": output}
    turns: list[dict[str, Any]] = []
    weights: list[int | None] = []
    for step, message in enumerate(history, start=1):
        turn = openai_message(message)
        turns.append(turn)
        if turn["role"] == "assistant":
            weights.append(0 if step in wrong or not is_transcript else 1)
        else:
            weights.append(None)
    final_step = len(history) + 1
    final_marks = wrong.get(final_step, set())
    if WHOLE_TURN in final_marks and (gold or "") == (output or ""):
        raise SkipRow("final_turn_marked_wrong")
    # The gold turn: the released text, and the final turn's tool calls unless marked wrong
    # (or the whole turn was, and a correction replaced it).
    gold_source: dict[str, Any] = {"role": "assistant", "content": gold or ""}
    calls = final.get("tool_calls") if isinstance(final, dict) else None
    if calls and WHOLE_TURN not in final_marks:
        gold_source["tool_calls"] = calls
    gold_turn = openai_message(gold_source, drop_calls=frozenset(final_marks))
    if not gold_turn.get("content", "").strip() and not gold_turn.get("tool_calls"):
        raise SkipRow("empty_gold_output")
    turns.append(gold_turn)
    weights.append(1)
    if any(weight == 0 for weight in weights):
        for turn, weight in zip(turns, weights, strict=True):
            if weight is not None:
                turn["weight"] = weight
    line: dict[str, Any] = {"messages": turns}
    if tools:
        line["tools"] = tools
    return dumps(line) + b"\n"


# The end of a plain line after its head (``plain_head``): the prompt, then the gold.
PLAIN_GOLD = b'},{"role":"assistant","content":'
PLAIN_END = b"}]}\n"


def plain_head(messages: Any) -> bytes | None:
    """A plain line's bytes up to its prompt's text, for this history; None if not plain.

    The encoder writes a plain line (``sft_line``'s shortcut) as this head, the
    prompt and the gold answer as JSON strings, and ``PLAIN_GOLD`` and
    ``PLAIN_END`` between and after them: the bytes ``sft_line`` writes (orjson
    writes no spaces), with the history's turns written once per chunk.
    """
    if type(messages) is not list:
        return None
    turns = []
    for message in messages:
        if type(message) is not dict:
            return None
        role = message.get("role")
        content = message.get("content")
        if role not in PLAIN_ROLES or type(content) is not str:
            return None
        turns.append(dumps({"role": role, "content": content}) + b",")
    return b'{"messages":[' + b"".join(turns) + b'{"role":"user","content":'


def rows(export: DatasetExport) -> QuerySet:
    return item_rows(export, FIELDS)


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    """Reads the chunk's marked steps in one query; each line then takes its item's.

    Histories repeat (a project's system prompt): each distinct one is decoded
    once per chunk (``sft_line`` only reads them).
    """
    wrong = wrong_steps_by_item([row[0] for row in chunk])
    line = sft_line
    decoded: dict[str, tuple[Any, bytes | None]] = {}  # JSON text -> (history, its plain head)
    gold_turn, end = PLAIN_GOLD, PLAIN_END

    def encode(row: Row) -> bytes:
        item_id, prompt, messages_json, gold, is_transcript, tools, output = row[:7]
        try:
            messages, head = decoded[messages_json]
        except KeyError:
            messages = loads(messages_json)
            head = plain_head(messages)
            decoded[messages_json] = (messages, head)
        if (
            head is not None
            and not is_transcript
            and (not tools or tools == "[]")
            and type(prompt) is str
            and type(gold) is str
            and gold
            and not gold.isspace()
            and not (wrong and wrong.get(item_id))
        ):
            return head + dumps(prompt) + gold_turn + dumps(gold) + end
        return line(
            prompt=prompt,
            messages=messages,
            gold=gold,
            is_transcript=is_transcript,
            tools=loads(tools) if tools and tools != "[]" else None,
            output=output,
            wrong=wrong.get(item_id),
        )

    return encode


def repeat_key(row: Row) -> bytes | None:
    """Prompt, history and gold output: the same pair twice teaches nothing new.

    ``chat.dedupe_key(prompt, messages_json, gold)``, written out: it runs once per row.
    """
    gold = row[3]
    if gold is None:
        return None
    return blake2b(dumps([row[2], row[1], gold]), digest_size=16).digest()


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
