"""Steps read from spans (``reviews.otlp.conventions``) into submitted items.

An item comes out in the transcript form of the items API: ``messages`` is the
whole conversation in OpenAI chat format ending with the assistant turn under
review, ``tools`` the tools offered. It is validated like any submitted item
before it is stored.

- Per span: the call's input messages and its answer.
- Per trace: the trace's calls in the order they ran, merged into one
  conversation (each call's input usually repeats the history so far; what it
  adds is appended), tool results recorded only on tool spans put after the
  call that asked for them, and the last call's answer as the turn under
  review. Every LLM call and tool run is listed as a step in the metadata.
"""

import math
from typing import Any

from reviews.otlp.conventions import Message, Step

EXTERNAL_ID = "external_id"
CONFIDENCE = "confidence"


def span_item(*, trace_id: str, step: Step, service: str) -> dict[str, Any]:
    """The item of one LLM call."""
    raw = _common(trace_id=trace_id, last=step, service=service)
    raw["external_id"] = _external_id(step) or f"{trace_id}-{step['span_id']}"
    raw["messages"] = [*step["messages"], _answer(step)]
    raw["tools"] = step["tools"]
    raw["metadata"]["otlp"].update(span_id=step["span_id"], span_name=step["name"])
    return raw


def trace_item(*, trace_id: str, steps: list[Step], service: str) -> dict[str, Any] | None:
    """The item of a whole trace (None when it holds no LLM call)."""
    ordered = sorted(steps, key=lambda s: (s["start_ns"], s["end_ns"], s["span_id"]))
    calls = [s for s in ordered if s["kind"] == "llm"]
    if not calls:
        return None
    last = max(calls, key=lambda s: (s["end_ns"], s["start_ns"]))
    conversation: list[Message] = []
    for call in calls:
        if call is last:
            continue
        _merge(conversation, call["messages"])
        _merge(conversation, [_answer(call)])
    _merge(conversation, last["messages"])
    conversation = _with_tool_results(conversation, [s for s in ordered if s["kind"] == "tool"])
    tools: list[dict[str, Any]] = []
    for call in calls:
        tools.extend(tool for tool in call["tools"] if tool not in tools)
    raw = _common(trace_id=trace_id, last=last, service=service)
    mapped = next((_external_id(s) for s in reversed(ordered) if _external_id(s)), None)
    raw["external_id"] = mapped or trace_id
    raw["messages"] = [*conversation, _answer(last)]
    raw["tools"] = tools
    raw["metadata"]["otlp"]["steps"] = [_summary(s) for s in ordered]
    return raw


def _common(*, trace_id: str, last: Step, service: str) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "model_name": last["model_name"],
        "model_version": last["model_version"],
        "metadata": {
            "otlp": {
                "trace_id": trace_id,
                "service": service,
                "provider": last["provider"],
                "usage": last["usage"],
            }
        },
    }
    if CONFIDENCE in last["mapped"]:
        raw["confidence"] = _number(last["mapped"][CONFIDENCE])
    return raw


def _answer(call: Step) -> Message:
    return {**call["output"], "model": call["model_version"]}


def _merge(conversation: list[Message], messages: list[Message]) -> None:
    """Append what ``messages`` adds to ``conversation``.

    A call's input that starts with the conversation so far adds its tail; one
    that carries no history (frameworks that send only the new turn) adds the
    messages not already there.
    """
    size = len(conversation)
    if _plain(messages[:size]) == _plain(conversation):
        conversation.extend(messages[size:])
        return
    seen = _plain(conversation)
    for message in messages:
        if _plain([message])[0] not in seen:
            conversation.append(message)
            seen.append(_plain([message])[0])


def _plain(messages: list[Message]) -> list[Message]:
    # Compared without what only the answer carries (the model that said it).
    return [{k: v for k, v in m.items() if k != "model"} for m in messages]


def _with_tool_results(conversation: list[Message], runs: list[Step]) -> list[Message]:
    """``conversation`` with a ``tool`` message after each call it lacks a result for,
    taken from the tool span that ran it (matched by call id)."""
    answered = {m.get("tool_call_id") for m in conversation if m["role"] == "tool"}
    results = {run["call_id"]: run for run in runs if run["call_id"] and run["result"] is not None}
    merged: list[Message] = []
    pending: list[Message] = []
    for message in conversation:
        if pending and message["role"] != "tool":
            merged.extend(pending)
            pending = []
        merged.append(message)
        for call in message.get("tool_calls") or ():
            run = results.get(call["id"])
            if run is not None and call["id"] not in answered:
                pending.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": run["result"]}
                )
                answered.add(call["id"])
    merged.extend(pending)
    return merged


def _summary(step: Step) -> dict[str, Any]:
    summary = {
        "kind": step["kind"],
        "span_id": step["span_id"],
        "name": step["name"],
        "start_ns": step["start_ns"],
        "end_ns": step["end_ns"],
    }
    if step["kind"] == "llm":
        summary["model"] = step["model_version"]
    else:
        summary.update(tool=step["tool_name"], call_id=step["call_id"])
    return summary


def _external_id(step: Step) -> str | None:
    value = step["mapped"].get(EXTERNAL_ID)
    if value in (None, ""):
        return None
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> Any:
    """A confidence attribute as a number; strings holding one are read (the
    validator refuses what is still not a number in [0, 1])."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value
