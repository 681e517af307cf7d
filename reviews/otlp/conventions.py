"""Reading LLM calls and tool runs out of OpenTelemetry spans.

Two conventions describe an LLM call on a span:

- OpenTelemetry's GenAI semantic conventions: ``gen_ai.operation.name``
  (``chat``, ``text_completion``, ``generate_content``), the models in
  ``gen_ai.request.model`` / ``gen_ai.response.model``, and the content in
  ``gen_ai.system_instructions``, ``gen_ai.input.messages`` and
  ``gen_ai.output.messages`` (``{role, parts: [{type: text | tool_call |
  tool_call_response, ...}]}``, a JSON string or a structured value). Older
  instrumentations (semantic conventions 1.36 and before) put the content in
  span events instead: ``gen_ai.system.message``, ``gen_ai.user.message``,
  ``gen_ai.assistant.message``, ``gen_ai.tool.message`` and ``gen_ai.choice``,
  whose body is the event's attributes or the JSON in ``gen_ai.event.content``.
  Tool runs are ``execute_tool`` spans (``gen_ai.tool.name``,
  ``gen_ai.tool.call.id``, ``gen_ai.tool.call.arguments`` / ``.result``).
- OpenInference (Arize Phoenix and its instrumentations):
  ``openinference.span.kind`` = ``LLM``, ``llm.model_name``, and flattened
  messages ``llm.input_messages.<i>.message.role`` / ``.content`` /
  ``.contents.<j>.message_content.text`` / ``.tool_calls.<k>.tool_call.id`` /
  ``.tool_call.function.name`` / ``.tool_call.function.arguments`` /
  ``.tool_call_id``, likewise ``llm.output_messages``; tools advertised as
  ``llm.tools.<i>.tool.json_schema``. Tool runs are ``TOOL`` spans
  (``tool.name``, ``input.value``, ``output.value``).

Whatever the convention, a call comes out as a *step*: a plain dict (it is
stored as JSON while a trace waits for its root) holding the input messages and
the answer in OpenAI's chat format (assistant ``tool_calls`` with JSON-string
arguments, ``tool`` messages with ``tool_call_id``) and the ``tools`` offered.
"""

import json
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
TOOL_OPERATION = "execute_tool"
ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
}
EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
EVENT_CONTENT = "gen_ai.event.content"
OI_INPUT = "llm.input_messages."
OI_OUTPUT = "llm.output_messages."
OI_TOOLS = "llm.tools."
_REMOTE_PARENT = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | (
    SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
)

Step = dict[str, Any]
Message = dict[str, Any]


class ContentUnreadable(ValueError):
    """An LLM span whose content cannot be read as a conversation; the message says why."""


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as plain Python: str, bool, int, float, list, dict or None."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes_of(key_values) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


def is_local_root(span: Span) -> bool:
    """True for a trace's root as this service sees it: no parent, or a remote one."""
    if not span.parent_span_id:
        return True
    return span.flags & _REMOTE_PARENT == _REMOTE_PARENT


def span_kind(attributes: dict[str, Any], events) -> str | None:
    """``"llm"``, ``"tool"`` or None (a span that is neither: counted and ignored)."""
    operation = attributes.get("gen_ai.operation.name")
    openinference = attributes.get("openinference.span.kind")
    if operation in CHAT_OPERATIONS or openinference == "LLM":
        return "llm"
    if operation == TOOL_OPERATION or openinference == "TOOL":
        return "tool"
    if operation is None and openinference is None:
        # Instrumentations that name no operation but record a model and its messages.
        if "gen_ai.input.messages" in attributes or "gen_ai.output.messages" in attributes:
            return "llm"
        if any(event.name in EVENT_ROLES or event.name == CHOICE_EVENT for event in events):
            return "llm"
    return None


def read_span(span: Span, mapped: dict[str, str]) -> Step | None:
    """The step a span holds, or None when it is neither an LLM call nor a tool run.

    ``mapped`` names span attributes to copy into the step under the given keys
    (the project's external id and confidence attributes). Raises
    ``ContentUnreadable`` for an LLM span whose content cannot be used.
    """
    attributes = attributes_of(span.attributes)
    kind = span_kind(attributes, span.events)
    if kind is None:
        return None
    step: Step = {
        "kind": kind,
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "mapped": {key: attributes[name] for key, name in mapped.items() if name in attributes},
    }
    if kind == "tool":
        step.update(_tool_run(attributes))
    else:
        step.update(_llm_call(attributes, span.events))
    return step


def _tool_run(attributes: dict[str, Any]) -> dict[str, Any]:
    arguments = attributes.get("gen_ai.tool.call.arguments", attributes.get("input.value"))
    result = attributes.get("gen_ai.tool.call.result", attributes.get("output.value"))
    return {
        "tool_name": _text(attributes.get("gen_ai.tool.name", attributes.get("tool.name", ""))),
        "call_id": _text(attributes.get("gen_ai.tool.call.id", attributes.get("tool.id", ""))),
        "arguments": None if arguments is None else _json_text(arguments),
        "result": None if result is None else _text(result),
    }


def _llm_call(attributes: dict[str, Any], events) -> dict[str, Any]:
    requested = _first(attributes, "gen_ai.request.model", "llm.request.model_name")
    responded = _first(attributes, "gen_ai.response.model", "llm.response.model_name")
    named = _first(attributes, "llm.model_name")
    provider = _first(attributes, "gen_ai.provider.name", "gen_ai.system", "llm.provider")
    model = requested or named or responded or provider or "unknown"
    if any(key.startswith((OI_INPUT, OI_OUTPUT)) for key in attributes):
        messages = _openinference_messages(attributes, OI_INPUT)
        outputs = _openinference_messages(attributes, OI_OUTPUT)
    elif "gen_ai.input.messages" in attributes or "gen_ai.output.messages" in attributes:
        messages = _semconv_messages(attributes.get("gen_ai.input.messages"), "input")
        outputs = _semconv_messages(attributes.get("gen_ai.output.messages"), "output")
    else:
        messages, outputs = _event_messages(events)
    instructions = attributes.get("gen_ai.system_instructions")
    if instructions is not None:
        text = _parts_text(_loaded(instructions, "gen_ai.system_instructions"))
        if text:
            messages.insert(0, {"role": "system", "content": text})
    answers = [m for m in outputs if m["role"] == "assistant"]
    if not answers:
        raise ContentUnreadable(
            "The LLM span holds no output message: enable content capture in its "
            "instrumentation (e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)."
        )
    return {
        "model_name": _text(model),
        "model_version": _text(responded or named or model),
        "provider": _text(provider or ""),
        "messages": messages,
        # The first choice: the answer the application went on with.
        "output": answers[0],
        "tools": _tools(attributes),
        "usage": {
            key: attributes[name]
            for key, name in (
                ("input_tokens", "gen_ai.usage.input_tokens"),
                ("output_tokens", "gen_ai.usage.output_tokens"),
                ("input_tokens", "llm.token_count.prompt"),
                ("output_tokens", "llm.token_count.completion"),
            )
            if isinstance(attributes.get(name), int)
        },
    }


# --- GenAI semantic conventions ------------------------------------------------------


def _semconv_messages(value: Any, which: str) -> list[Message]:
    if value is None:
        return []
    loaded = _loaded(value, f"gen_ai.{which}.messages")
    if not isinstance(loaded, list):
        raise ContentUnreadable(f"gen_ai.{which}.messages is not a list of messages.")
    messages: list[Message] = []
    for index, raw in enumerate(loaded):
        if not isinstance(raw, dict):
            raise ContentUnreadable(f"gen_ai.{which}.messages[{index}] is not an object.")
        role = _role(raw.get("role"), f"gen_ai.{which}.messages[{index}].role")
        parts = raw.get("parts")
        if parts is None and "content" in raw:
            parts = raw["content"] if isinstance(raw["content"], list) else [raw["content"]]
        if not isinstance(parts, list):
            raise ContentUnreadable(f"gen_ai.{which}.messages[{index}].parts is not a list.")
        messages.extend(_from_parts(role, parts))
    return messages


def _from_parts(role: str, parts: list) -> list[Message]:
    """One message from a message's parts, or one ``tool`` message per tool response."""
    texts, calls, responses = [], [], []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(_text(part.get("content", part.get("text", ""))))
        elif kind == "tool_call":
            calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            result = part.get("response", part.get("result", ""))
            responses.append(
                {
                    "role": "tool",
                    "tool_call_id": _text(part.get("id") or ""),
                    "content": _text(result),
                }
            )
    if responses:
        return responses
    message: Message = {"role": role, "content": "\n".join(texts)}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    return "\n".join(
        _text(part.get("content", "")) if isinstance(part, dict) else _text(part)
        for part in parts
        if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text")
    )


def _event_messages(events) -> tuple[list[Message], list[Message]]:
    inputs: list[Message] = []
    outputs: list[Message] = []
    for event in events:
        if event.name not in EVENT_ROLES and event.name != CHOICE_EVENT:
            continue
        body = attributes_of(event.attributes)
        content = body.pop(EVENT_CONTENT, None)
        if content is not None:
            loaded = _loaded(content, f"{event.name} {EVENT_CONTENT}")
            if isinstance(loaded, dict):
                body.update(loaded)
            else:
                body["content"] = loaded
        if event.name == CHOICE_EVENT:
            if body.get("index", 0) != 0:
                continue
            message = body.get("message", {})
            message = _loaded(message, "gen_ai.choice message") if message else {}
            if not isinstance(message, dict):
                raise ContentUnreadable("gen_ai.choice holds a message that is not an object.")
            outputs.append(_flat_message({"role": "assistant", **message}, "gen_ai.choice"))
        else:
            body.setdefault("role", EVENT_ROLES[event.name])
            inputs.append(_flat_message(body, event.name))
    return inputs, outputs


def _flat_message(body: dict[str, Any], where: str) -> Message:
    """An OpenAI-shaped message body (role, content, tool_calls, id / tool_call_id)."""
    role = _role(body.get("role"), f"{where} role")
    content = body.get("content")
    if isinstance(content, list):
        content = _parts_text(
            [
                {"type": "text", "content": p.get("text", "")} if isinstance(p, dict) else p
                for p in content
            ]
        )
    message: Message = {"role": role, "content": "" if content is None else _text(content)}
    if role == "tool":
        message["tool_call_id"] = _text(body.get("tool_call_id", body.get("id", "")))
    calls = body.get("tool_calls")
    if calls:
        calls = _loaded(calls, f"{where} tool_calls")
        if not isinstance(calls, list):
            raise ContentUnreadable(f"{where} tool_calls is not a list.")
        message["tool_calls"] = [
            _tool_call(
                call.get("id"),
                (call.get("function") or {}).get("name"),
                (call.get("function") or {}).get("arguments"),
            )
            for call in calls
            if isinstance(call, dict)
        ]
    return message


# --- OpenInference ------------------------------------------------------------------


def _indexed(attributes: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``prefix<i>.<rest>`` attributes grouped by ``i`` (then by ``rest``)."""
    grouped: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and index.isascii() and rest:
            grouped.setdefault(int(index), {})[rest] = value
    return dict(sorted(grouped.items()))


def _openinference_messages(attributes: dict[str, Any], prefix: str) -> list[Message]:
    messages = []
    for index, fields in _indexed(attributes, prefix).items():
        where = f"{prefix}{index}"
        role = _role(fields.get("message.role"), f"{where}.message.role")
        content = fields.get("message.content")
        if content is None:
            contents = _indexed(fields, "message.contents.")
            content = "\n".join(
                _text(part.get("message_content.text", ""))
                for part in contents.values()
                if part.get("message_content.type", "text") == "text"
            )
        message: Message = {"role": role, "content": _text(content)}
        if role == "tool":
            message["tool_call_id"] = _text(fields.get("message.tool_call_id", ""))
        calls = _indexed(fields, "message.tool_calls.")
        if calls:
            message["tool_calls"] = [
                _tool_call(
                    call.get("tool_call.id"),
                    call.get("tool_call.function.name"),
                    call.get("tool_call.function.arguments"),
                )
                for call in calls.values()
            ]
        messages.append(message)
    return messages


def _tools(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools offered to the model, as OpenAI's ``tools`` list."""
    tools = []
    for index, fields in _indexed(attributes, OI_TOOLS).items():
        schema = fields.get("tool.json_schema")
        if schema is None:
            continue
        loaded = _loaded(schema, f"{OI_TOOLS}{index}.tool.json_schema")
        if isinstance(loaded, dict):
            tools.append(loaded if "function" in loaded else _function_tool(loaded))
    definitions = attributes.get("gen_ai.tool.definitions")
    if definitions is not None:
        loaded = _loaded(definitions, "gen_ai.tool.definitions")
        if isinstance(loaded, list):
            tools.extend(_function_tool(tool) for tool in loaded if isinstance(tool, dict))
    return tools


def _function_tool(definition: dict[str, Any]) -> dict[str, Any]:
    function = {
        key: definition[key] for key in ("name", "description", "parameters") if key in definition
    }
    return {"type": "function", "function": function}


# --- Small readers -----------------------------------------------------------------


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {
        "id": _text(call_id or ""),
        "type": "function",
        "function": {
            "name": _text(name or ""),
            "arguments": "{}" if arguments is None else _json_text(arguments),
        },
    }


def _loaded(value: Any, where: str) -> Any:
    """A structured attribute as given, or the JSON a string attribute holds."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise ContentUnreadable(f"{where} is not valid JSON.") from exc


def _role(value: Any, where: str) -> str:
    role = ROLES.get(value.lower()) if isinstance(value, str) else None
    if role is None:
        raise ContentUnreadable(f"{where} is not a known role (system, user, assistant, tool).")
    return role


def _first(attributes: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attributes.get(name)
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json_text(value: Any) -> str:
    """Tool arguments as OpenAI carries them: a JSON string (given text is kept as is)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
