"""Traces as instrumented applications make them: spans recorded with the OpenTelemetry SDK.

Each builder records spans through a real ``TracerProvider`` and returns the
finished ``ReadableSpan`` objects; ``export_request`` encodes them with the
OTLP exporter's own encoder, ``otlp_json`` turns that into OTLP JSON (the SDK's
HTTP exporter only sends protobuf).
"""

import base64
import json
from collections.abc import Callable

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SERVICE = "weather-agent"
SYSTEM = "You are a weather assistant. Use the tools."
QUESTION = "What's the weather in Paris, and what time is it there?"
FINAL = "It is rainy and 14 °C in Paris, where it is 15:04."
WEATHER_ARGS = {"city": "Paris"}
TIME_ARGS = {"timezone": "Europe/Paris"}
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    {
        "type": "function",
        "name": "get_time",
        "description": "Local time",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
    },
]


def provider(
    exporter: SpanExporter, service: str = SERVICE, *, batch: bool = False
) -> TracerProvider:
    """A provider exporting each span as it ends, or (``batch``) in batches as
    applications configure it."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    tracer_provider.add_span_processor(processor)
    return tracer_provider


def recorded(build: Callable[[TracerProvider], None]) -> list[ReadableSpan]:
    """The spans ``build`` records on a fresh provider, in the order they ended."""
    memory = InMemorySpanExporter()
    tracer_provider = provider(memory)
    build(tracer_provider)
    tracer_provider.shutdown()
    return list(memory.get_finished_spans())


def export_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    return encode_spans(spans)


def otlp_json(request: ExportTraceServiceRequest) -> dict:
    """The request in OTLP JSON: protobuf's JSON mapping with hex trace and span ids."""
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return document


def _messages(*messages: dict) -> str:
    return json.dumps(list(messages))


def _agent_chat(input_messages: str, output_messages: str, extra: dict | None) -> dict:
    """The attributes of one of the agent's chat spans (GenAI conventions)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
        "gen_ai.input.messages": input_messages,
        "gen_ai.output.messages": output_messages,
        "gen_ai.tool.definitions": json.dumps(TOOLS),
        **(extra or {}),
    }


def semconv_agent(tracer_provider: TracerProvider, *, extra: dict | None = None) -> None:
    """A two-tool agent in the GenAI conventions: invoke_agent > chat, 2 tools, chat;
    and a database query that is no LLM call."""
    tracer = tracer_provider.get_tracer("app.agent")
    user = {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
    asked = {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": "call_w", "name": "get_weather", "arguments": WEATHER_ARGS},
            {"type": "tool_call", "id": "call_t", "name": "get_time", "arguments": TIME_ARGS},
        ],
    }
    with tracer.start_as_current_span(
        "invoke_agent weather", attributes={"gen_ai.operation.name": "invoke_agent"}
    ):
        with tracer.start_as_current_span("SELECT users", attributes={"db.system": "postgresql"}):
            pass
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes=_agent_chat(
                _messages(user),
                _messages({**asked, "finish_reason": "tool_calls"}),
                extra,
            ),
        ):
            pass
        for call_id, name, arguments, result in (
            ("call_w", "get_weather", WEATHER_ARGS, "rainy, 14 °C"),
            ("call_t", "get_time", TIME_ARGS, "15:04"),
        ):
            with tracer.start_as_current_span(
                f"execute_tool {name}",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": name,
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.call.arguments": json.dumps(arguments),
                    "gen_ai.tool.call.result": result,
                },
            ):
                pass
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes=_agent_chat(
                _messages(
                    user,
                    asked,
                    {
                        "role": "tool",
                        "parts": [
                            {
                                "type": "tool_call_response",
                                "id": "call_w",
                                "response": "rainy, 14 °C",
                            }
                        ],
                    },
                    {
                        "role": "tool",
                        "parts": [
                            {"type": "tool_call_response", "id": "call_t", "response": "15:04"}
                        ],
                    },
                ),
                _messages(
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": FINAL}],
                        "finish_reason": "stop",
                    }
                ),
                extra,
            ),
        ):
            pass


def semconv_chat(
    tracer_provider: TracerProvider,
    *,
    question: str = "Tell me a joke",
    answer: str = "Why did the span cross the road?",
    extra: dict | None = None,
):
    """A plain chat call, the only span of its trace."""
    tracer = tracer_provider.get_tracer("app.chat")
    with tracer.start_as_current_span(
        "chat gpt-4o-mini",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.input.messages": _messages(
                {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                {"role": "user", "parts": [{"type": "text", "content": question}]},
            ),
            "gen_ai.output.messages": _messages(
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": answer}],
                    "finish_reason": "stop",
                }
            ),
            **(extra or {}),
        },
    ):
        pass


def event_chat(tracer_provider: TracerProvider) -> None:
    """A chat call recorded the older way: content in gen_ai.* span events."""
    tracer = tracer_provider.get_tracer("app.legacy")
    with tracer.start_as_current_span(
        "chat gpt-4",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4",
        },
    ) as span:
        span.add_event("gen_ai.system.message", {"content": "You are terse."})
        span.add_event(
            "gen_ai.user.message",
            {"gen_ai.event.content": json.dumps({"role": "user", "content": "Weather in Paris?"})},
        )
        span.add_event(
            "gen_ai.assistant.message",
            {
                "gen_ai.event.content": json.dumps(
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                            }
                        ],
                    }
                )
            },
        )
        span.add_event("gen_ai.tool.message", {"id": "call_1", "content": "rainy"})
        span.add_event(
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "stop",
                "message": json.dumps({"role": "assistant", "content": "Rainy."}),
            },
        )


def openinference_agent(tracer_provider: TracerProvider) -> None:
    """OpenInference's flattened attributes: an LLM span asking a tool, the TOOL span,
    and the LLM span answering."""
    tracer = tracer_provider.get_tracer("openinference.instrumentation.openai")
    prefix_in, prefix_out = "llm.input_messages", "llm.output_messages"
    with tracer.start_as_current_span("agent", attributes={"openinference.span.kind": "AGENT"}):
        with tracer.start_as_current_span(
            "ChatCompletion",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                f"{prefix_in}.0.message.role": "system",
                f"{prefix_in}.0.message.content": SYSTEM,
                f"{prefix_in}.1.message.role": "user",
                f"{prefix_in}.1.message.content": QUESTION,
                f"{prefix_out}.0.message.role": "assistant",
                f"{prefix_out}.0.message.tool_calls.0.tool_call.id": "call_w",
                f"{prefix_out}.0.message.tool_calls.0.tool_call.function.name": "get_weather",
                f"{prefix_out}.0.message.tool_calls.0.tool_call.function.arguments": json.dumps(
                    WEATHER_ARGS
                ),
                "llm.tools.0.tool.json_schema": json.dumps(
                    {"type": "function", "function": {"name": "get_weather"}}
                ),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "get_weather",
            attributes={
                "openinference.span.kind": "TOOL",
                "tool.name": "get_weather",
                "input.value": json.dumps(WEATHER_ARGS),
                "output.value": "rainy",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "ChatCompletion",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                f"{prefix_in}.0.message.role": "system",
                f"{prefix_in}.0.message.content": SYSTEM,
                f"{prefix_in}.1.message.role": "user",
                f"{prefix_in}.1.message.contents.0.message_content.type": "text",
                f"{prefix_in}.1.message.contents.0.message_content.text": QUESTION,
                f"{prefix_in}.2.message.role": "assistant",
                f"{prefix_in}.2.message.tool_calls.0.tool_call.id": "call_w",
                f"{prefix_in}.2.message.tool_calls.0.tool_call.function.name": "get_weather",
                f"{prefix_in}.2.message.tool_calls.0.tool_call.function.arguments": json.dumps(
                    WEATHER_ARGS
                ),
                f"{prefix_in}.3.message.role": "tool",
                f"{prefix_in}.3.message.tool_call_id": "call_w",
                f"{prefix_in}.3.message.content": "rainy",
                f"{prefix_out}.0.message.role": "assistant",
                f"{prefix_out}.0.message.content": "It is rainy in Paris.",
            },
        ):
            pass
