"""Traces sent the way applications send them: the SDK's OTLP/HTTP exporter against a
live server on loopback, and OTLP JSON built from the SDK's spans."""

import gzip
import json

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from reviews.models import OtlpGrouping, OtlpTraceSpan, ReviewItem
from tests.otlp import traces

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/otlp/v1/traces"


def exporter(live_server, key: str, **options) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{live_server.url}{PATH}",
        headers={"Authorization": f"Api-Key {key}"},
        timeout=10,
        **options,
    )


def post(live_server, key: str, body: bytes, content_type: str, **headers) -> httpx.Response:
    return httpx.post(
        f"{live_server.url}{PATH}",
        content=body,
        headers={"Content-Type": content_type, "X-API-Key": key, **headers},
        timeout=10,
    )


def protobuf_answer(response: httpx.Response) -> ExportTraceServiceResponse:
    assert response.headers["content-type"] == "application/x-protobuf"
    return ExportTraceServiceResponse.FromString(response.content)


def conversation(item: ReviewItem) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in item.messages]


def test_agent_trace_through_the_sdk_exporter_is_one_item_per_llm_span(
    live_server, agents, agents_key
):
    spans = traces.recorded(traces.semconv_agent)
    assert exporter(live_server, agents_key).export(spans) == SpanExportResult.SUCCESS
    items = list(ReviewItem.objects.filter(project=agents).order_by("id"))
    assert len(items) == 2  # two chat spans; the agent, tool and database spans are not items
    asking, answering = items
    assert asking.messages[-1]["tool_calls"][1]["function"]["name"] == "get_time"
    assert answering.output == traces.FINAL
    assert answering.model_name == "gpt-4o"
    assert answering.model_version == "gpt-4o-2024-08-06"
    assert answering.metadata["otlp"]["service"] == traces.SERVICE
    # Resubmitted (an exporter retry): nothing new, gzip this time.
    again = exporter(live_server, agents_key, compression=Compression.Gzip)
    assert again.export(spans) == SpanExportResult.SUCCESS
    assert ReviewItem.objects.filter(project=agents).count() == 2


def test_per_trace_items_wait_for_the_root_span_sent_span_by_span(live_server, agents, agents_key):
    agents.otlp_grouping = OtlpGrouping.TRACE
    agents.save(update_fields=["otlp_grouping"])
    # SimpleSpanProcessor: one export request per span, the root last.
    tracer_provider = traces.provider(exporter(live_server, agents_key))
    traces.semconv_agent(tracer_provider)
    tracer_provider.shutdown()
    (item,) = ReviewItem.objects.filter(project=agents)
    assert conversation(item) == [
        ("system", traces.SYSTEM),
        ("user", traces.QUESTION),
        ("assistant", ""),
        ("tool", "rainy, 14 °C"),
        ("tool", "15:04"),
        ("assistant", traces.FINAL),
    ]
    assert item.output == traces.FINAL
    assert [s["kind"] for s in item.metadata["otlp"]["steps"]] == ["llm", "tool", "tool", "llm"]
    assert OtlpTraceSpan.objects.count() == 0  # the held spans are gone once the item is built


def test_plain_chat_in_one_batch_and_its_resubmit(live_server, agents, agents_key):
    tracer_provider = traces.provider(
        exporter(live_server, agents_key), service="chat-app", batch=True
    )
    for n in range(3):
        traces.semconv_chat(tracer_provider, question=f"Joke {n}?", answer=f"Answer {n}.")
    assert tracer_provider.force_flush()
    tracer_provider.shutdown()
    items = ReviewItem.objects.filter(project=agents).order_by("id")
    assert [i.output for i in items] == ["Answer 0.", "Answer 1.", "Answer 2."]
    assert conversation(items[0]) == [
        ("system", "Be brief."),
        ("user", "Joke 0?"),
        ("assistant", "Answer 0."),
    ]


def test_json_encoding_and_its_resubmit(live_server, agents, agents_key):
    request = traces.export_request(traces.recorded(traces.semconv_agent))
    body = json.dumps(traces.otlp_json(request)).encode()
    first = post(live_server, agents_key, body, "application/json")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    assert first.json() == {}  # full success: no partial_success
    assert first.headers["X-HITL-Items-Created"] == "2"
    assert first.headers["X-HITL-Spans-Ignored"] == "4"  # agent, database, two tool spans
    again = post(
        live_server,
        agents_key,
        gzip.compress(body),
        "application/json",
        **{"Content-Encoding": "gzip"},
    )
    assert again.status_code == 200
    assert again.headers["X-HITL-Items-Created"] == "0"
    assert again.headers["X-HITL-Items-Existing"] == "2"
    assert ReviewItem.objects.filter(project=agents).count() == 2


def test_partial_success_names_the_rejected_spans(live_server, agents, agents_key):
    def build(tracer_provider):
        traces.semconv_chat(tracer_provider, answer="Fine.")
        traces.semconv_chat(tracer_provider, extra={"gen_ai.input.messages": "[oops"})
        traces.semconv_chat(tracer_provider, answer="x" * 300_000)

    request = traces.export_request(traces.recorded(build))
    response = post(live_server, agents_key, request.SerializeToString(), "application/x-protobuf")
    assert response.status_code == 200
    answer = protobuf_answer(response)
    assert answer.partial_success.rejected_spans == 2
    assert "gen_ai.input.messages is not valid JSON" in answer.partial_success.error_message
    assert "no more than" in answer.partial_success.error_message
    assert [i.output for i in ReviewItem.objects.filter(project=agents)] == ["Fine."]


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"\x0a\xff\xff\xff\xff", "application/x-protobuf"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 7}]}]}]}', "application/json"),
        (b"{not json", "application/json"),
    ],
)
def test_malformed_payloads_are_400_with_nothing_stored(
    live_server, agents, agents_key, body, content_type
):
    response = post(live_server, agents_key, body, content_type)
    assert response.status_code == 400
    if content_type == "application/json":
        assert response.json()["code"] == 3  # google.rpc.Code.INVALID_ARGUMENT
        assert response.json()["message"]
    else:
        assert Status.FromString(response.content).code == 3
    assert ReviewItem.objects.count() == 0
    assert OtlpTraceSpan.objects.count() == 0


def test_other_encodings_are_415(live_server, agents_key):
    response = post(live_server, agents_key, b"spans", "text/plain")
    assert response.status_code == 415
