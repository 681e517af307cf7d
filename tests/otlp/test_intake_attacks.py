"""The OTLP endpoint from the attacker's side, over HTTP: keys, sizes, bombs, nesting."""

import gzip
import json

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from reviews.models import OtlpGrouping, OtlpTraceSpan, ReviewItem
from reviews.services.projects import api_key_create, api_key_revoke
from tests import factories
from tests.otlp import traces

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/otlp/v1/traces"
PROTOBUF = "application/x-protobuf"


def chat_body() -> bytes:
    return traces.export_request(traces.recorded(traces.semconv_chat)).SerializeToString()


def send(live_server, body: bytes, *, headers: dict, cookies=None) -> httpx.Response:
    return httpx.post(
        f"{live_server.url}{PATH}",
        content=body,
        headers={"Content-Type": PROTOBUF, **headers},
        cookies=cookies,
        timeout=10,
    )


def status_of(response: httpx.Response) -> Status:
    assert response.headers["content-type"] == PROTOBUF
    return Status.FromString(response.content)


def nothing_stored() -> bool:
    return not ReviewItem.objects.exists() and not OtlpTraceSpan.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Api-Key hitl_00000000_not-a-key"},
        {"Authorization": "Bearer hitl_00000000_not-a-key"},
        {"X-API-Key": ""},
        {"Authorization": "Api-Key two words"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_without_a_valid_key_is_401_and_stores_nothing(live_server, agents, headers):
    response = send(live_server, chat_body(), headers=headers)
    assert response.status_code == 401
    assert status_of(response).code == 16  # UNAUTHENTICATED
    assert nothing_stored()


def test_a_revoked_key_is_401(live_server, agents):
    key, raw = api_key_create(project=agents, name="old exporter")
    api_key_revoke(key=key)
    response = send(live_server, chat_body(), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
    assert nothing_stored()


def test_another_projects_key_writes_only_into_its_own_project(live_server, agents, agents_key):
    other = factories.make_project(name="Other team", slug="other-team")
    _key, other_raw = api_key_create(project=other, name="other exporter")
    body = chat_body()
    assert send(live_server, body, headers={"X-API-Key": agents_key}).status_code == 200
    (mine,) = ReviewItem.objects.filter(project=agents)
    # The same spans (same trace and span ids) under the other key: its own item, ours untouched.
    response = send(live_server, body, headers={"Authorization": f"Bearer {other_raw}"})
    assert response.status_code == 200
    assert response.headers["X-HITL-Items-Created"] == "1"
    assert ReviewItem.objects.filter(project=other).count() == 1
    assert list(ReviewItem.objects.filter(project=agents)) == [mine]
    mine.refresh_from_db()
    assert mine.history.count() == 1


def test_a_staff_session_may_not_send_traces(live_server, agents, admin_user, client):
    client.force_login(admin_user)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    response = send(live_server, chat_body(), headers={}, cookies=cookies)
    assert response.status_code == 403
    assert nothing_stored()


def test_an_oversize_body_is_413(live_server, agents, agents_key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = send(live_server, b"\x0a" + b"x" * 5_000, headers={"X-API-Key": agents_key})
    assert response.status_code == 413
    assert status_of(response).code == 8  # RESOURCE_EXHAUSTED
    assert nothing_stored()


def test_a_gzip_bomb_is_413_without_inflating_it(live_server, agents, agents_key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = send(
        live_server, bomb, headers={"X-API-Key": agents_key, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "inflates to more than" in status_of(response).message
    assert nothing_stored()


def test_an_unknown_content_encoding_is_400(live_server, agents, agents_key):
    response = send(
        live_server, chat_body(), headers={"X-API-Key": agents_key, "Content-Encoding": "br"}
    )
    assert response.status_code == 400
    assert nothing_stored()


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_attributes_nested_past_protobufs_limit_are_400(live_server, agents, agents_key):
    # The protobuf library refuses to build such a message: its bytes are written by hand.
    value = AnyValue(string_value="deep").SerializeToString()
    for _ in range(150):  # AnyValue.kvlist_value > KeyValueList.values > KeyValue.value
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    span = traces.export_request(traces.recorded(traces.semconv_chat))
    span = span.resource_spans[0].scope_spans[0].spans[0].SerializeToString()
    span += _field(9, _field(1, b"app.deep") + _field(2, value))  # Span.attributes
    body = _field(1, _field(2, _field(2, span)))  # resource_spans > scope_spans > spans
    response = send(live_server, body, headers={"X-API-Key": agents_key})
    assert response.status_code == 400
    assert status_of(response).code == 3
    assert nothing_stored()


def test_json_nested_deep_is_400(live_server, agents, agents_key):
    body = b'{"resourceSpans": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = send(
        live_server, body, headers={"X-API-Key": agents_key, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == 3
    assert nothing_stored()


def test_held_spans_of_a_trace_are_per_project(live_server, agents, agents_key):
    """Per trace: another project's spans with the same trace id never join our item."""
    agents.otlp_grouping = OtlpGrouping.TRACE
    agents.save(update_fields=["otlp_grouping"])
    other = factories.make_project(name="Other team", slug="other-team", otlp_grouping="trace")
    _key, other_raw = api_key_create(project=other, name="other exporter")
    request = traces.export_request(traces.recorded(traces.semconv_agent))
    spans = request.resource_spans[0].scope_spans[0].spans
    root = next(s for s in spans if not s.parent_span_id)
    children = [s for s in spans if s.parent_span_id]
    del spans[:]
    spans.extend(children)
    only_children = request.SerializeToString()
    assert send(live_server, only_children, headers={"X-API-Key": other_raw}).status_code == 200
    assert OtlpTraceSpan.objects.filter(project=other).count() == 4
    del spans[:]
    spans.append(root)
    assert send(live_server, request.SerializeToString(), headers={"X-API-Key": agents_key})
    # Our project saw only the root: no LLM call, no item; theirs still waits.
    assert not ReviewItem.objects.exists()
    assert OtlpTraceSpan.objects.filter(project=other).count() == 4
