"""What the preference formats share: the prompt as chat turns, the pair rules, the keys.

A comparison's decision implies ordered pairs: the gold answer (the winner's
output, or its correction) over every other candidate, and a corrected winner's
correction over its own output. A tie or all bad implies none; the formats
skip such an item and count it in the manifest (``tie``, ``all_bad``).
"""

import hashlib
from typing import Any

import orjson

from datasets.formats import SkipRow
from datasets.formats.chat import chat_history
from reviews.models import Preference

NO_PAIR = {Preference.TIE.value: "tie", Preference.ALL_BAD.value: "all_bad"}


def chat_prompt(*, prompt: str, messages: Any, is_transcript: bool) -> list[dict]:
    """The prompt as plain chat turns (system, user, assistant), up to the final user turn.

    Of a transcript, the conversation before its final turn (which already
    holds the user's last message); else the history, then ``prompt``. Raises
    ``SkipRow`` for a history the plain turns cannot hold (tool messages).
    """
    if is_transcript:
        if not isinstance(messages, list) or not messages:
            raise SkipRow("malformed_messages")
        return chat_history(messages[:-1], assistant_weight=None)
    turns = chat_history(messages, assistant_weight=None)
    turns.append({"role": "user", "content": prompt})
    return turns


def pair_check(*, preference: str, chosen: str | None, rejected: str | None) -> None:
    """Raise ``SkipRow`` unless the row is a pair a line can hold.

    ``preference`` is the comparison's final one ("" for a single item).
    """
    if preference in NO_PAIR:
        raise SkipRow(NO_PAIR[preference])
    if chosen is None or not chosen.strip():
        raise SkipRow("empty_gold_output")
    if rejected is None or not rejected.strip():
        raise SkipRow("empty_rejected_output")
    if chosen == rejected:
        raise SkipRow("chosen_equals_rejected")


def assistant_turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def repeat_key(*parts: Any) -> bytes:
    """A fingerprint of what makes two lines repeats (prompt, history, outputs, label)."""
    return hashlib.blake2b(orjson.dumps(list(parts)), digest_size=16).digest()
