"""Conversations and agent traces: normalise and validate submitted messages.

An item's conversation is a list of messages in OpenAI chat format: ``system``,
``user``, ``assistant`` (text and/or ``tool_calls``) and ``tool`` results with
the ``tool_call_id`` they answer, plus optional ``tools`` definitions.
Anthropic-style content blocks (``text``, ``tool_use``, ``tool_result``) and
tool definitions (``input_schema``) are accepted and rewritten to that shape.

Two ways to submit, told apart by ``transcript_form``:

- prompt form (the original one): ``prompt`` and ``output`` hold the user turn
  and the answer under review, ``messages`` the history before the prompt;
- transcript form: no ``prompt`` and no ``output``; ``messages`` is the whole
  conversation and its last message, an assistant turn, is the output under
  review. ``prompt`` (the last user turn's text) and ``output`` (the final
  turn's text, "" when it only calls tools) are copied from it, so checks,
  routing, search and corrections work on every item alike.

Everything here is pure: no database, no settings. ``conversation_clean``
answers errors per submitted message index and field, in DRF's shape.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reviews.jsontext import json_value_error, text_error

ROLES = ("system", "user", "assistant", "tool")
# OpenAI's newer name for the system role.
ROLE_ALIASES = {"developer": "system"}
# Stored per message beside the OpenAI fields: when it was said and by which model.
MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "timestamp", "model"}
)
# Response-object fields an SDK dump carries; dropped when empty, refused otherwise.
EMPTY_RESPONSE_KEYS = frozenset({"refusal", "function_call", "audio", "annotations"})
BLOCK_TYPES = ("text", "tool_use", "tool_result")
TEXT_JOIN = "\n\n"
NAME_MAX = 200
ID_MAX = 255
MODEL_MAX = 200
# Stored fields beyond the original ones (reviews.services.ingest.INGEST_FIELDS).
TRANSCRIPT_FIELDS = ("tools", "is_transcript")
# Turns a reviewer can mark wrong (step verdicts): what the model said or called,
# and what a tool answered it. The user's and the system's turns are the task itself.
MARKABLE_ROLES = ("assistant", "tool")
# Copied from a transcript, never submitted with one.
DERIVED_FIELDS = ("prompt", "output")

LAST_TURN = (
    "The last message must be the assistant turn under review "
    "(or send prompt and output, with messages as the history before the prompt)."
)


class Invalid(Exception):
    """One refused value; ``errors`` in DRF's shape below the message it belongs to."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class Limits:
    text_chars: int
    json_depth: int


def transcript_form(raw: dict) -> bool:
    """True when ``raw`` submits a whole conversation: messages, no prompt, no output."""
    return "prompt" not in raw and "output" not in raw and "messages" in raw


def conversation_clean(raw: dict, *, limits: Limits) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, errors) for the conversation part of one submitted item.

    ``fields`` holds ``messages``, ``tools`` and ``is_transcript``, and in the
    transcript form the ``prompt`` and ``output`` copied from the conversation.
    ``errors`` names each refused field: ``{"messages": {"3": {"tool_call_id":
    [...]}}}`` by submitted index, ``{"tools": {"0": {"name": [...]}}}``.
    """
    whole = transcript_form(raw)
    fields: dict[str, Any] = {"is_transcript": whole}
    errors: dict[str, Any] = {}
    try:
        fields["messages"] = messages_clean(
            raw.get("messages", []), limits=limits, final_turn=whole
        )
    except Invalid as exc:
        errors["messages"] = exc.errors["messages"]
    try:
        fields["tools"] = tools_clean(raw.get("tools", []), limits=limits)
    except Invalid as exc:
        errors["tools"] = exc.errors["tools"]
    if whole and "messages" in fields:
        messages = fields["messages"]
        fields["prompt"] = next(
            (m["content"] for m in reversed(messages) if m["role"] == "user"), ""
        )
        fields["output"] = messages[-1].get("content") or ""
    if errors:
        return {}, errors
    return fields, {}


def transcript_of(
    *, messages: list[dict], prompt: str, output: str, is_transcript: bool
) -> list[dict]:
    """The whole conversation of a stored item, ending with the turn under review."""
    if is_transcript:
        return list(messages)
    return [
        *messages,
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": output},
    ]


def tool_call_ids(message: dict) -> list[str]:
    return [call["id"] for call in message.get("tool_calls") or ()]


# --- messages ---------------------------------------------------------------


def messages_clean(value: Any, *, limits: Limits, final_turn: bool) -> list[dict]:
    """The messages in OpenAI shape; raises ``Invalid`` with errors per submitted index.

    ``final_turn``: the last message is the assistant turn under review. Its
    tool calls are the output, so they need no results; every earlier
    assistant turn's calls must be answered by ``tool`` messages right after
    it, as OpenAI's chat format requires.
    """
    if not isinstance(value, list):
        raise Invalid(
            {"messages": [f'Expected a list of items but got type "{type(value).__name__}".']}
        )
    if final_turn and not value:
        raise Invalid({"messages": [LAST_TURN]})
    errors: dict[str, Any] = {}
    normalised: list[tuple[int, dict]] = []
    for index, message in enumerate(value):
        try:
            normalised.extend((index, turn) for turn in _message(message, limits))
        except Invalid as exc:
            errors[str(index)] = exc.errors
    if errors:
        raise Invalid({"messages": errors})
    _check_tool_flow(normalised, final_turn=final_turn)
    if final_turn and normalised[-1][1]["role"] != "assistant":
        raise Invalid({"messages": [LAST_TURN]})
    return [turn for _index, turn in normalised]


def _fail(field: str, message: str) -> Invalid:
    return Invalid({field: [message]})


def _text(value: Any, field: str, limits: Limits, *, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise _fail(field, "Must be a string.")
    limit = limit or limits.text_chars
    if len(value) > limit:
        raise _fail(field, f"Ensure this field has no more than {limit} characters.")
    error = text_error(value)
    if error:
        raise _fail(field, error)
    return value


def _name(value: Any, field: str, limits: Limits, *, limit: int = NAME_MAX) -> str:
    text = _text(value, field, limits, limit=limit)
    if not text.strip():
        raise _fail(field, "This field may not be blank.")
    return text


def _message(raw: Any, limits: Limits) -> list[dict]:
    """One submitted message as one or more OpenAI messages (an Anthropic user turn
    of ``tool_result`` blocks becomes one ``tool`` message per result)."""
    if not isinstance(raw, dict):
        raise _fail("non_field_errors", "Expected an object with role and content.")
    if not raw.keys() <= MESSAGE_KEYS:
        unknown = sorted(
            str(key)
            for key, child in raw.items()
            if key not in MESSAGE_KEYS and not (key in EMPTY_RESPONSE_KEYS and not child)
        )
        if unknown:
            raise Invalid({key: ["Unknown field."] for key in unknown[:10]})
    role = raw.get("role")
    if role is None:
        raise _fail("role", "This field is required.")
    if not isinstance(role, str):
        # Only text is echoed: printing a nested value would recurse through it.
        raise _fail("role", "Must be a string.")
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLES:
        raise _fail("role", f'"{role}" is not a valid choice.')
    extra = _extras(raw, limits)
    if role == "assistant":
        return [{**_assistant(raw, limits), **extra}]
    for key in ("tool_calls",) if role == "tool" else ("tool_calls", "tool_call_id"):
        if key in raw:
            raise _fail(key, f"Not allowed on a {role} message.")
    if "content" not in raw:
        raise _fail("content", "This field is required.")
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if call_id is None:
            raise _fail("tool_call_id", "This field is required.")
        return [
            {
                "role": "tool",
                "tool_call_id": _name(call_id, "tool_call_id", limits, limit=ID_MAX),
                "content": _block_text(raw["content"], limits, allowed=("text",)),
                **extra,
            }
        ]
    if role == "user" and isinstance(raw["content"], list):
        return [{**turn, **extra} for turn in _user_blocks(raw["content"], limits)]
    return [{"role": role, "content": _block_text(raw["content"], limits), **extra}]


def _extras(raw: dict, limits: Limits) -> dict:
    extra = {}
    if "name" in raw:
        extra["name"] = _name(raw["name"], "name", limits)
    if "model" in raw:
        extra["model"] = _name(raw["model"], "model", limits, limit=MODEL_MAX)
    if "timestamp" in raw:
        stamp = raw["timestamp"]
        try:
            if not isinstance(stamp, str):
                raise ValueError
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _fail("timestamp", "Must be an ISO 8601 date and time.") from exc
        extra["timestamp"] = stamp
    return extra


def _blocks(value: list, limits: Limits, *, allowed: tuple[str, ...]) -> list[tuple[str, Any]]:
    """(type, block) for each content block, each checked for its type."""
    out = []
    for index, block in enumerate(value):
        where = f"content[{index}]"
        if isinstance(block, str):
            out.append(("text", _text(block, where, limits)))
            continue
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _fail(where, "Expected a content block with a type.")
        kind = block["type"]
        if kind not in allowed:
            accepted = ", ".join(allowed)
            raise _fail(where, f'Unsupported content block type "{kind}"; accepted: {accepted}.')
        if kind == "text":
            out.append(("text", _text(block.get("text"), f"{where}.text", limits)))
        else:
            out.append((kind, block))
    return out


def _block_text(value: Any, limits: Limits, *, allowed: tuple[str, ...] = ("text",)) -> str:
    if isinstance(value, str):
        return _text(value, "content", limits)
    if not isinstance(value, list):
        raise _fail("content", "Must be a string or a list of text blocks.")
    text = TEXT_JOIN.join(part for _kind, part in _blocks(value, limits, allowed=allowed))
    return _text(text, "content", limits)


def _user_blocks(value: list, limits: Limits) -> list[dict]:
    """An Anthropic user turn: its tool results as tool messages, then its text."""
    turns, texts = [], []
    for index, (kind, block) in enumerate(_blocks(value, limits, allowed=("text", "tool_result"))):
        if kind == "text":
            texts.append(block)
            continue
        where = f"content[{index}]"
        call_id = block.get("tool_use_id")
        if call_id is None:
            raise _fail(f"{where}.tool_use_id", "This field is required.")
        try:
            content = _block_text(block.get("content", ""), limits)
        except Invalid as exc:
            raise _fail(f"{where}.content", next(iter(exc.errors.values()))[0]) from exc
        turns.append(
            {
                "role": "tool",
                "tool_call_id": _name(call_id, f"{where}.tool_use_id", limits, limit=ID_MAX),
                "content": content,
            }
        )
    if texts or not turns:
        turns.append({"role": "user", "content": _text(TEXT_JOIN.join(texts), "content", limits)})
    return turns


def _assistant(raw: dict, limits: Limits) -> dict:
    if "tool_call_id" in raw:
        raise _fail("tool_call_id", "Not allowed on an assistant message.")
    content = raw.get("content")
    calls: list[dict] = []
    if isinstance(content, list):
        texts = []
        for index, (kind, block) in enumerate(
            _blocks(content, limits, allowed=("text", "tool_use"))
        ):
            if kind == "text":
                texts.append(block)
            else:
                where = f"content[{index}]"
                calls.append(
                    _call(
                        {
                            "id": block.get("id"),
                            "function": {
                                "name": block.get("name"),
                                "arguments": block.get("input"),
                            },
                        },
                        where,
                        limits,
                        arguments_key="input",
                    )
                )
        content = _text(TEXT_JOIN.join(texts), "content", limits) if texts else None
    elif content is not None:
        content = _text(content, "content", limits)
    if "tool_calls" in raw and raw["tool_calls"] is not None:
        given = raw["tool_calls"]
        if not isinstance(given, list):
            raise _fail("tool_calls", "Expected a list of tool calls.")
        calls.extend(_call(call, f"tool_calls[{i}]", limits) for i, call in enumerate(given))
    if content is None and not calls:
        raise _fail("content", "An assistant turn needs content or tool_calls.")
    turn: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        turn["tool_calls"] = calls
    return turn


def _call(raw: Any, where: str, limits: Limits, *, arguments_key: str = "arguments") -> dict:
    if not isinstance(raw, dict):
        raise _fail(where, "Expected an object with id, type and function.")
    if raw.get("type", "function") != "function":
        raise _fail(f"{where}.type", 'Must be "function".')
    call_id = raw.get("id")
    if call_id is None:
        raise _fail(f"{where}.id", "This field is required.")
    call_id = _name(call_id, f"{where}.id", limits, limit=ID_MAX)
    function = raw.get("function")
    if not isinstance(function, dict):
        raise _fail(f"{where}.function", "Expected an object with name and arguments.")
    name_where = f"{where}.name" if arguments_key == "input" else f"{where}.function.name"
    if function.get("name") is None:
        raise _fail(name_where, "This field is required.")
    name = _name(function["name"], name_where, limits)
    arguments_where = (
        f"{where}.input" if arguments_key == "input" else f"{where}.function.arguments"
    )
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": name,
            "arguments": _arguments(function.get("arguments"), arguments_where, limits),
        },
    }


def _arguments(value: Any, where: str, limits: Limits) -> str:
    """Arguments as OpenAI keeps them: the JSON text of an object. An object given
    as such (Anthropic's ``input``) is written as compact JSON text."""
    if value is None:
        raise _fail(where, "This field is required.")
    if isinstance(value, str):
        text = _text(value, where, limits)
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise _fail(where, f"Not valid JSON: {exc.msg} at character {exc.pos}.") from exc
    elif isinstance(value, dict):
        parsed = value
        text = None
    else:
        raise _fail(where, "Must be a JSON object or its JSON text.")
    if not isinstance(parsed, dict):
        raise _fail(where, "Must be a JSON object.")
    error = json_value_error(parsed, max_depth=limits.json_depth)
    if error:
        raise _fail(where, error)
    if text is None:
        text = json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))
        if len(text) > limits.text_chars:
            raise _fail(where, f"Longer than {limits.text_chars} characters as JSON text.")
    return text


def _check_tool_flow(turns: list[tuple[int, dict]], *, final_turn: bool) -> None:
    """Tool results answer the calls of the assistant turn right before them, each once.

    Errors are reported at the submitted index of the offending message.
    """
    seen: dict[str, int] = {}
    answered: set[str] = set()
    open_calls: list[str] = []
    opened_at = -1
    last = len(turns) - 1
    for position, (index, turn) in enumerate(turns):
        role = turn["role"]
        if role == "tool":
            call_id = turn["tool_call_id"]
            if call_id not in open_calls:
                message = (
                    f'The tool call "{call_id}" was already answered.'
                    if call_id in answered
                    else f'No tool call "{call_id}" in the assistant turn before this message.'
                )
                raise Invalid({"messages": {str(index): {"tool_call_id": [message]}}})
            open_calls.remove(call_id)
            answered.add(call_id)
            continue
        if open_calls:
            raise _unanswered(opened_at, open_calls)
        if role == "assistant":
            for call_id in tool_call_ids(turn):
                if call_id in seen:
                    raise Invalid(
                        {
                            "messages": {
                                str(index): {
                                    "tool_calls": [
                                        f'The tool call id "{call_id}" is used twice '
                                        f"(first in message {seen[call_id]})."
                                    ]
                                }
                            }
                        }
                    )
                seen[call_id] = index
            is_final = final_turn and position == last
            open_calls = [] if is_final else tool_call_ids(turn)
            opened_at = index
    if open_calls:
        raise _unanswered(opened_at, open_calls)


def _unanswered(index: int, calls: list[str]) -> Invalid:
    names = ", ".join(f'"{c}"' for c in calls[:5])
    return Invalid(
        {
            "messages": {
                str(index): {
                    "tool_calls": [
                        f"No tool result for {names}: a tool message answering each call "
                        "must follow this turn."
                    ]
                }
            }
        }
    )


# --- tools ------------------------------------------------------------------


def tools_clean(value: Any, *, limits: Limits) -> list[dict]:
    """Tool definitions in OpenAI's shape (``{"type": "function", "function": {...}}``);
    Anthropic's ``{"name", "description", "input_schema"}`` is rewritten to it."""
    if not isinstance(value, list):
        raise Invalid(
            {"tools": [f'Expected a list of items but got type "{type(value).__name__}".']}
        )
    errors: dict[str, Any] = {}
    tools, names = [], set()
    for index, raw in enumerate(value):
        try:
            tool = _tool(raw, limits)
        except Invalid as exc:
            errors[str(index)] = exc.errors
            continue
        name = tool["function"]["name"]
        if name in names:
            errors[str(index)] = {"name": [f'A tool named "{name}" is defined twice.']}
        names.add(name)
        tools.append(tool)
    if errors:
        raise Invalid({"tools": errors})
    return tools


def _tool(raw: Any, limits: Limits) -> dict:
    if not isinstance(raw, dict):
        raise _fail("non_field_errors", "Expected a tool definition object.")
    if "function" in raw:
        if raw.get("type", "function") != "function":
            raise _fail("type", 'Must be "function".')
        spec = raw["function"]
        if not isinstance(spec, dict):
            raise _fail("function", "Expected an object with name, description and parameters.")
        schema_key = "parameters"
    else:
        if raw.get("type", "custom") != "custom":
            raise _fail("type", "Only function tools can be reviewed.")
        spec = raw
        schema_key = "input_schema"
    if spec.get("name") is None:
        raise _fail("name", "This field is required.")
    function: dict[str, Any] = {"name": _name(spec["name"], "name", limits)}
    if spec.get("description") is not None:
        function["description"] = _text(spec["description"], "description", limits)
    schema = spec.get(schema_key)
    if schema is not None:
        if not isinstance(schema, dict):
            raise _fail(schema_key, "Must be a JSON Schema object.")
        error = json_value_error(schema, max_depth=limits.json_depth)
        if error:
            raise _fail(schema_key, error)
        function["parameters"] = schema
    if isinstance(spec.get("strict"), bool):
        function["strict"] = spec["strict"]
    return {"type": "function", "function": function}
