"""What the chat formats (SFT, DPO) share: the stored history as turns, the repeat key.

``chat_history`` writes plain chat turns (system, user, assistant text), as the
DPO format takes them; ``openai_turns`` writes OpenAI's fine-tuning messages
with tool calls, as the SFT format does.

Stored text is model output and reviewer input: it is JSON-escaped by the
encoders, never interpreted.
"""

import hashlib
from typing import Any

import orjson

from datasets.formats import SkipRow

# Roles of the plain chat turns (DPO's TRL format has no tool messages).
CHAT_ROLES = frozenset({"system", "user", "assistant"})
# OpenAI chat fine-tuning roles with tool calling (tool results answer a call by id).
OPENAI_ROLES = frozenset({"system", "user", "assistant", "tool"})


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


def _tool_calls(calls: Any) -> list[dict]:
    """Stored tool calls (reviews.transcripts: arguments already JSON text) as OpenAI's."""
    if not isinstance(calls, list):
        raise SkipRow("malformed_messages")
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
            raise SkipRow("malformed_messages")
        out.append(
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": function["arguments"]},
            }
        )
    return out


def openai_message(message: Any, *, drop_calls: frozenset[str] = frozenset()) -> dict:
    """One stored message as an OpenAI fine-tuning message (no weight).

    Assistant turns keep their ``tool_calls`` (less the ids in ``drop_calls``)
    and leave out ``content`` when they only call tools; tool results keep
    their ``tool_call_id``. Stored extras (time, model, name) are not written.
    Raises ``SkipRow`` for a message the format cannot hold.
    """
    if not isinstance(message, dict):
        raise SkipRow("malformed_messages")
    role = message.get("role")
    content = message.get("content")
    if role not in OPENAI_ROLES:
        raise SkipRow(f"unsupported_role:{role}")
    if content is not None and not isinstance(content, str):
        raise SkipRow("malformed_messages")
    if role == "tool":
        if not isinstance(message.get("tool_call_id"), str) or content is None:
            raise SkipRow("malformed_messages")
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": content}
    turn: dict[str, Any] = {"role": role}
    calls = []
    if role == "assistant" and message.get("tool_calls"):
        calls = [c for c in _tool_calls(message["tool_calls"]) if c["id"] not in drop_calls]
    if content is not None and (content or not calls):
        turn["content"] = content
    elif not calls:
        raise SkipRow("malformed_messages")
    if calls:
        turn["tool_calls"] = calls
    return turn


def dedupe_key(prompt: str, messages_json: str, gold: str) -> bytes:
    """A fingerprint of the prompt (with its stored chat history) and the gold output."""
    return hashlib.blake2b(orjson.dumps([messages_json, prompt, gold]), digest_size=16).digest()
