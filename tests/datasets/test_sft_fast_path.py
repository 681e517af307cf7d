"""The SFT writer's plain-line shortcut writes exactly what the full writer writes.

``sft_line`` writes the common line (system/user history, prompt, gold) itself
and hands everything else to ``conversation_line``. Both are run here on the
same inputs, including the ones just outside the shortcut (assistant or tool
turns, extra keys, odd types, blank gold, tools, marks, transcripts): same
bytes, or the same reason to skip.
"""

import itertools

import orjson
import pytest

from datasets.formats import SkipRow, sft_chat
from datasets.formats.chat import dedupe_key
from datasets.formats.sft_chat import conversation_line, plain_head, repeat_key, sft_line

TEXTS = [
    "Max dose of paracetamol?",
    'Dosis für Kinder? "15 mg/kg"\n<b>?</b>\t\\ \u2028 \x1f \U0001f600',
    "",
    " \n\t",
    "\u00a0",
]
HISTORIES = [
    [],
    [{"role": "system", "content": "You are a careful clinician."}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "Earlier question"}],
    [{"content": "keys in another order", "role": "user"}],
    [{"role": "user", "content": "extra keys", "name": "ann", "time": 3}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": None}],
    [{"role": "user", "content": 12}],
    [{"role": "user"}],
    [{"role": "assistant", "content": "Hello"}],
    [{"role": "assistant", "content": "", "tool_calls": []}],
    [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
    [{"role": "tool", "content": "no call id"}],
    [{"role": "developer", "content": "unknown role"}],
    [{"role": None, "content": "no role"}],
    ["not a dict"],
    {"role": "user", "content": "not a list"},
    None,
]
GOLDS = ["Up to 4 g a day.", "", "   ", "\u3000", None, "Ä — ok\r\n"]
TOOLS = [None, [], [{"type": "function", "function": {"name": "f", "parameters": {}}}]]
WRONG = [None, {}, {2: {""}}, {1: {""}}]


def _written(write, **kwargs) -> bytes | str:
    try:
        return write(**kwargs)
    except SkipRow as skip:
        return f"skip:{skip.reason}"


@pytest.mark.parametrize("is_transcript", [False, True])
def test_every_line_is_the_full_writers_line(is_transcript, monkeypatch):
    handed_on = []

    def counted(**kwargs):
        handed_on.append(1)
        return conversation_line(**kwargs)

    monkeypatch.setattr(sft_chat, "conversation_line", counted)
    cases = itertools.product(HISTORIES, TEXTS, GOLDS, TOOLS, WRONG)
    compared = plain = 0
    for history, prompt, gold, tools, wrong in cases:
        if is_transcript and isinstance(history, list):
            history = [*history, {"role": "assistant", "content": "the model's turn"}]
        kwargs = {
            "prompt": prompt,
            "messages": orjson.loads(orjson.dumps(history)),
            "gold": gold,
            "is_transcript": is_transcript,
            "tools": tools,
            "output": "the model's turn",
            "wrong": wrong,
        }
        before = len(handed_on)
        fast = _written(sft_line, **kwargs)
        full = _written(conversation_line, **kwargs)
        assert fast == full, kwargs
        compared += 1
        plain += len(handed_on) == before
    assert compared == len(HISTORIES) * len(TEXTS) * len(GOLDS) * len(TOOLS) * len(WRONG)
    if not is_transcript:
        assert plain > 100  # the shortcut was taken, not only the full writer


def test_a_shared_history_is_not_changed_by_writing_it():
    history = [{"role": "system", "content": "S"}, {"role": "assistant", "content": "Hi"}]
    before = orjson.dumps(history)
    first = sft_line(prompt="Q", messages=history, gold="A", wrong={2: {""}})
    assert sft_line(prompt="Q", messages=history, gold="A", wrong={2: {""}}) == first
    assert sft_line(prompt="Q", messages=history[:1], gold="A") == sft_line(
        prompt="Q", messages=history[:1], gold="A"
    )
    assert orjson.dumps(history) == before


def test_the_sft_repeat_key_is_the_chat_formats_fingerprint():
    row = (7, "Max dose?", '[{"role": "system", "content": "S"}]', "4 g", False, "[]", "8 g", 3)
    assert repeat_key(row) == dedupe_key(row[1], row[2], row[3])
    assert repeat_key((*row[:3], None, *row[4:])) is None


@pytest.mark.parametrize("is_transcript", [False, True])
def test_the_chunk_encoders_plain_lines_are_the_full_writers_lines(is_transcript, monkeypatch):
    """The encoder writes plain lines from a head per history (``plain_head``), without
    ``sft_line``: each of its lines, from database rows, is ``conversation_line``'s."""
    handed_on = []

    def counted(**kwargs):
        handed_on.append(1)
        return sft_line(**kwargs)

    monkeypatch.setattr(sft_chat, "sft_line", counted)
    cases = itertools.product(HISTORIES, TEXTS, GOLDS, TOOLS, WRONG)
    compared = plain = 0
    for item_id, (history, prompt, gold, tools, wrong) in enumerate(cases, start=1):
        if is_transcript and isinstance(history, list):
            history = [*history, {"role": "assistant", "content": "the model's turn"}]
        marks = {item_id: wrong} if wrong else {}
        monkeypatch.setattr(sft_chat, "wrong_steps_by_item", lambda ids, marks=marks: marks)
        # As the row query gives them: JSON text (PostgreSQL's, with spaces), then the history id.
        messages_json = orjson.dumps(history).decode().replace('":', '": ').replace(',"', ', "')
        tools_json = orjson.dumps(tools if tools is not None else []).decode()
        output = "the model's turn"
        row = (item_id, prompt, messages_json, gold, is_transcript, tools_json, output, 9)
        before = len(handed_on)
        try:
            encoded = sft_chat.encoder([row])(row)
        except SkipRow as skip:
            encoded = f"skip:{skip.reason}"
        full = _written(
            conversation_line,
            prompt=prompt,
            messages=orjson.loads(messages_json),
            gold=gold,
            is_transcript=is_transcript,
            tools=tools or None,
            output="the model's turn",
            wrong=wrong,
        )
        assert encoded == full, row
        compared += 1
        plain += len(handed_on) == before
    assert compared == len(HISTORIES) * len(TEXTS) * len(GOLDS) * len(TOOLS) * len(WRONG)
    if is_transcript:
        assert plain == 0
    else:
        assert plain > 100  # written from the head, not by sft_line


def test_a_plain_head_is_none_for_a_history_sft_line_does_not_write_itself():
    assert plain_head([{"role": "assistant", "content": "Hi"}]) is None
    assert plain_head(None) is None
    assert plain_head([]) == b'{"messages":[{"role":"user","content":'
