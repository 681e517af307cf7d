"""What the chat formats (SFT, DPO) share: the stored history as turns, the repeat key.

Stored text is model output and reviewer input: it is JSON-escaped by the
encoders, never interpreted.
"""

import hashlib
from typing import Any

import orjson

from datasets.formats import SkipRow

# OpenAI chat fine-tuning roles this exporter can write. Stored "tool" turns
# carry no tool_call_id, which the format requires, so such rows are skipped.
CHAT_ROLES = frozenset({"system", "user", "assistant"})


def chat_history(messages: Any, *, assistant_weight: int | None) -> list[dict]:
    """The stored chat history as turns; raises ``SkipRow`` if it cannot be written."""
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


def dedupe_key(prompt: str, messages_json: str, gold: str) -> bytes:
    """A fingerprint of the prompt (with its stored chat history) and the gold output."""
    return hashlib.blake2b(orjson.dumps([messages_json, prompt, gold]), digest_size=16).digest()
