"""The decode and mapping layer on payloads the OpenTelemetry SDK builds."""

import gzip
import json

import pytest

from reviews.otlp.conventions import ContentUnreadable, read_span
from reviews.otlp.decoding import (
    JSON,
    PROTOBUF,
    MalformedPayload,
    PayloadTooLarge,
    body_inflated,
    request_decoded,
)
from reviews.otlp.items import span_item, trace_item
from tests.otlp import traces


def steps_of(request, mapped=None):
    steps = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                step = read_span(span, mapped or {})
                if step is not None:
                    steps.append(step)
    return steps


def trace_id_of(request) -> str:
    return request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()


AGENT_CONVERSATION = [
    {"role": "system", "content": traces.SYSTEM},
    {"role": "user", "content": traces.QUESTION},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_w",
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps(traces.WEATHER_ARGS)},
            },
            {
                "id": "call_t",
                "type": "function",
                "function": {"name": "get_time", "arguments": json.dumps(traces.TIME_ARGS)},
            },
        ],
        "model": "gpt-4o-2024-08-06",
    },
    {"role": "tool", "tool_call_id": "call_w", "content": "rainy, 14 °C"},
    {"role": "tool", "tool_call_id": "call_t", "content": "15:04"},
    {"role": "assistant", "content": traces.FINAL, "model": "gpt-4o-2024-08-06"},
]


def test_protobuf_and_json_encodings_decode_to_the_same_request():
    request = traces.export_request(traces.recorded(traces.semconv_agent))
    from_protobuf = request_decoded(request.SerializeToString(), media_type=PROTOBUF)
    document = json.dumps(traces.otlp_json(request)).encode()
    assert b'"traceId": "' + trace_id_of(request).encode() in document  # hex, not base64
    from_json = request_decoded(document, media_type=JSON)
    assert from_protobuf == request
    assert from_json == request


def test_agent_trace_per_span_gives_each_call_with_its_input():
    request = traces.export_request(traces.recorded(traces.semconv_agent))
    steps = steps_of(request)
    # The database span and the agent span are neither calls nor tool runs.
    assert [s["kind"] for s in steps] == ["llm", "tool", "tool", "llm"]
    first = span_item(trace_id=trace_id_of(request), step=steps[0], service="svc")
    assert first["messages"] == AGENT_CONVERSATION[:3]
    assert first["external_id"] == f"{trace_id_of(request)}-{steps[0]['span_id']}"
    assert first["model_name"] == "gpt-4o"
    assert first["model_version"] == "gpt-4o-2024-08-06"
    assert first["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": traces.TOOLS[0]["parameters"],
        },
    }
    last = span_item(trace_id=trace_id_of(request), step=steps[3], service="svc")
    assert last["messages"][-1] == AGENT_CONVERSATION[-1]
    assert last["metadata"]["otlp"]["span_name"] == "chat gpt-4o"


def test_agent_trace_per_trace_is_one_conversation_with_the_steps():
    request = traces.export_request(traces.recorded(traces.semconv_agent))
    item = trace_item(trace_id=trace_id_of(request), steps=steps_of(request), service="svc")
    assert item["external_id"] == trace_id_of(request)
    assert item["messages"] == AGENT_CONVERSATION
    assert len(item["tools"]) == 2
    steps = item["metadata"]["otlp"]["steps"]
    assert [(s["kind"], s.get("tool")) for s in steps] == [
        ("llm", None),
        ("tool", "get_weather"),
        ("tool", "get_time"),
        ("llm", None),
    ]
    assert item["metadata"]["otlp"]["service"] == "svc"


def test_tool_results_only_on_tool_spans_are_put_after_their_call():
    """A framework whose second call sends only the new turn: the results come from
    the execute_tool spans."""

    def build(tracer_provider):
        traces.semconv_agent(tracer_provider)

    request = traces.export_request(traces.recorded(build))
    steps = steps_of(request)
    last = steps[3]
    last["messages"] = [m for m in last["messages"] if m["role"] != "tool"]
    item = trace_item(trace_id=trace_id_of(request), steps=steps, service="svc")
    assert item["messages"] == AGENT_CONVERSATION


def test_older_span_events_are_read():
    request = traces.export_request(traces.recorded(traces.event_chat))
    (step,) = steps_of(request)
    assert step["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "rainy", "tool_call_id": "call_1"},
    ]
    assert step["output"] == {"role": "assistant", "content": "Rainy."}
    assert step["model_name"] == "gpt-4"
    assert step["provider"] == "openai"


def test_openinference_flattened_messages_are_read():
    request = traces.export_request(traces.recorded(traces.openinference_agent))
    steps = steps_of(request)
    assert [s["kind"] for s in steps] == ["llm", "tool", "llm"]
    assert steps[0]["output"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": json.dumps(traces.WEATHER_ARGS),
    }
    assert steps[0]["tools"] == [{"type": "function", "function": {"name": "get_weather"}}]
    assert steps[2]["messages"][1] == {"role": "user", "content": traces.QUESTION}
    assert steps[2]["messages"][3] == {"role": "tool", "content": "rainy", "tool_call_id": "call_w"}
    item = trace_item(trace_id=trace_id_of(request), steps=steps, service="svc")
    assert [m["role"] for m in item["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert item["messages"][-1]["content"] == "It is rainy in Paris."
    assert item["model_name"] == "gpt-4o-mini"


def test_mapped_attributes_give_external_id_and_confidence():
    def build(tracer_provider):
        traces.semconv_chat(tracer_provider, extra={"app.case": 1842, "app.confidence": "0.42"})

    request = traces.export_request(traces.recorded(build))
    (step,) = steps_of(request, {"external_id": "app.case", "confidence": "app.confidence"})
    item = span_item(trace_id=trace_id_of(request), step=step, service="svc")
    assert item["external_id"] == "1842"
    assert item["confidence"] == 0.42


def test_a_span_without_captured_content_is_unreadable():
    def build(tracer_provider):
        tracer = tracer_provider.get_tracer("t")
        with tracer.start_as_current_span(
            "chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
        ):
            pass

    request = traces.export_request(traces.recorded(build))
    with pytest.raises(ContentUnreadable, match="content capture"):
        steps_of(request)


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"gen_ai.input.messages": "[not json", "gen_ai.output.messages": "[]"}, "not valid JSON"),
        ({"gen_ai.input.messages": '{"role": "user"}'}, "not a list"),
        ({"gen_ai.input.messages": '[{"role": "wizard", "parts": []}]'}, "not a known role"),
    ],
)
def test_broken_content_names_the_attribute(attributes, message):
    def build(tracer_provider):
        tracer = tracer_provider.get_tracer("t")
        with tracer.start_as_current_span(
            "chat", attributes={"gen_ai.operation.name": "chat", **attributes}
        ):
            pass

    request = traces.export_request(traces.recorded(build))
    with pytest.raises(ContentUnreadable, match=message):
        steps_of(request)


@pytest.mark.parametrize(
    "body, media_type",
    [
        (b"\xff\xff\xff", PROTOBUF),
        (b"{", JSON),
        (b"[]", JSON),
        (b'{"resourceSpans": "many"}', JSON),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', JSON),
        (b"[" * 100_000, JSON),
    ],
)
def test_malformed_bodies_are_refused(body, media_type):
    with pytest.raises(MalformedPayload):
        request_decoded(body, media_type=media_type)


def test_gzip_is_inflated_within_the_limit():
    assert body_inflated(gzip.compress(b"abc"), encoding="gzip", limit=10) == b"abc"
    with pytest.raises(PayloadTooLarge):
        body_inflated(gzip.compress(b"a" * 11), encoding="gzip", limit=10)
    with pytest.raises(MalformedPayload):
        body_inflated(b"not gzip", encoding="gzip", limit=10)
    with pytest.raises(MalformedPayload):
        body_inflated(gzip.compress(b"abc")[:-4], encoding="gzip", limit=10)
    with pytest.raises(MalformedPayload, match="br"):
        body_inflated(b"x", encoding="br", limit=10)
