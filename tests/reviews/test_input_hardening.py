"""Strange input to the write endpoints is a 400 naming the field, never a 500.

Each case here was a 500 before (RecursionError, UnicodeEncodeError, DataError,
OverflowError) or was stored when it should not have been. Bodies are built as
text: ``json.dumps`` escapes lone surrogates and NUL (``\\ud800``, ``\\u0000``)
the way a client sends them, and some bodies are not what ``json.dumps`` writes
at all (``Infinity``, ``1e999``, nesting 100,000 levels deep).
"""

import base64
import json

import pytest
from rest_framework.test import APIClient

from datasets.models import DatasetExport
from reviews.api.parsers import _max_depth
from reviews.api.serializers import ItemInputSerializer
from reviews.api.validation import validate_item
from reviews.jsontext import NOT_FINITE, NUL, SURROGATE
from reviews.models import CheckResult, ReviewItem, WebhookDelivery
from reviews.services.projects import api_key_create
from tests.factories import item_payload

ITEMS = "/api/v1/items/"
EXPORTS = "/api/v1/exports/"
TOO_DEEP = "Nested deeper than 64 levels."
BAD_SLUG = 'Enter a valid "slug".'


def post_text(client, text: str, url: str = ITEMS):
    return client.post(url, data=text, content_type="application/json")


def post(client, body, url: str = ITEMS):
    return post_text(client, json.dumps(body), url)


def nested(levels: int) -> str:
    """JSON text of lists nested ``levels`` deep."""
    return "[" * levels + "]" * levels


def with_raw(payload: dict, field: str, raw_json: str) -> str:
    """``payload`` as JSON text with ``field``'s value replaced by ``raw_json``."""
    marker = "__raw__"
    return json.dumps({**payload, field: marker}).replace(json.dumps(marker), raw_json)


def snapshot(item: ReviewItem | None = None) -> dict:
    counts = {
        "items": ReviewItem.objects.count(),
        "history": ReviewItem.history.count(),
        "checks": CheckResult.objects.count(),
        "webhooks": WebhookDelivery.objects.count(),
        "exports": DatasetExport.objects.count(),
    }
    if item is not None:
        item.refresh_from_db()
        counts["stored"] = (item.payload_hash, item.status, item.updated_at, item.metadata)
    return counts


@pytest.fixture
def stored(client_api):
    """An item stored before the attack, to show it is left untouched."""
    response = post(client_api, item_payload(external_id="stored", metadata={"k": [1, 2]}))
    assert response.status_code == 201
    return ReviewItem.objects.get(external_id="stored")


@pytest.fixture
def refused(client_api, stored):
    """Post a body, expect a 400, and check nothing changed; returns the error body."""

    def check(text: str, url: str = ITEMS) -> dict:
        before = snapshot(stored)
        response = post_text(client_api, text, url)
        assert response.status_code == 400, response.content
        assert snapshot(stored) == before
        return response.json()

    return check


# --- Nesting ---------------------------------------------------------------------


@pytest.mark.parametrize("levels", [64, 65, 900, 100_000])
def test_metadata_nested_too_deep_is_400_naming_metadata(refused, levels):
    # metadata {"a": [...]} is one level more than the lists inside it.
    body = with_raw(item_payload(), "metadata", '{"a": ' + nested(levels) + "}")
    errors = refused(body)
    assert errors["metadata"] == [TOO_DEEP]


def test_metadata_at_the_depth_limit_is_stored(client_api):
    body = with_raw(item_payload(external_id="deep-ok"), "metadata", '{"a": ' + nested(63) + "}")
    assert post_text(client_api, body).status_code == 201
    assert ReviewItem.objects.filter(external_id="deep-ok").exists()


@pytest.mark.parametrize("field", ["messages", "context"])
def test_list_fields_nested_900_deep_are_400_naming_the_field(refused, field):
    errors = refused(with_raw(item_payload(), field, nested(900)))
    assert errors[field] == [TOO_DEEP]


def test_deep_nesting_inside_a_batch_names_the_item_and_field(refused):
    items = json.dumps([item_payload(), item_payload(metadata="__deep__")])
    body = '{"items": ' + items.replace('"__deep__"', '{"a": ' + nested(900) + "}") + "}"
    errors = refused(body)
    assert errors["items"] == {"1": {"metadata": [TOO_DEEP]}}
    assert "JSON parse error" in errors["detail"]


def test_brackets_inside_strings_do_not_count_as_nesting(client_api):
    text = '\\"[{' * 2000 + "\\\\" + "[" * 2000
    payload = item_payload(external_id="brackets", output=text, metadata={"s": text})
    response = post(client_api, payload)
    assert response.status_code == 201, response.content
    assert ReviewItem.objects.get(external_id="brackets").metadata == {"s": text}


def test_the_depth_limit_is_a_setting(client_api, settings):
    settings.HITL_MAX_JSON_DEPTH = 3
    ok = post(client_api, item_payload(metadata={"a": [[1]]}))
    deep = post(client_api, item_payload(metadata={"a": [[[1]]]}))
    assert ok.status_code == 201
    assert deep.status_code == 400
    assert deep.json()["metadata"] == ["Nested deeper than 3 levels."]


def test_depth_scan_ignores_escaped_quotes_and_backslashes():
    assert _max_depth(json.dumps({"a": ['"[[', "\\", {"b": "\\\\]]]"}]})) == 3
    assert _max_depth(json.dumps("[[[[")) == 0


# --- Lone surrogates and NUL -------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"external_id": "x\ud800"}, "external_id", [SURROGATE]),
        ({"prompt": "\udfff"}, "prompt", [SURROGATE]),
        ({"output": "ok \ud83d"}, "output", [SURROGATE]),
        ({"model_name": "\ud800"}, "model_name", [SURROGATE]),
        ({"model_version": "\ud800"}, "model_version", [SURROGATE]),
        ({"metadata": {"a": ["\ud800"]}}, "metadata", [SURROGATE]),
        ({"metadata": {"\ud800": 1}}, "metadata", [SURROGATE]),
        ({"metadata": {"a\x00": 1}}, "metadata", [NUL]),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages", None),
        ({"context": [{"text": "t", "title": "\ud800"}]}, "context", None),
        ({"context": ["\udc00"]}, "context", None),
    ],
)
def test_lone_surrogates_and_nul_are_400_naming_the_field(refused, overrides, field, expected):
    errors = refused(json.dumps(item_payload(**overrides)))
    assert set(errors) == {field}
    if expected:
        assert errors[field] == expected
    else:
        assert SURROGATE in json.dumps(errors[field])


def test_surrogate_in_a_batch_names_the_item(refused):
    errors = refused(json.dumps({"items": [item_payload(), item_payload(prompt="\ud800")]}))
    assert errors["items"] == {"1": {"prompt": [SURROGATE]}}


@pytest.mark.parametrize("slug", ["clin\x00ical", "\ud800", "", "a b", "clinical\n", "ü"])
def test_project_that_is_not_a_slug_is_400(refused, slug):
    assert refused(json.dumps(item_payload(project=slug))) == {"project": [BAD_SLUG]}


def test_error_quoting_a_surrogate_is_printable(refused):
    errors = refused(json.dumps(item_payload(messages=[{"role": "\ud800", "content": "x"}])))
    assert errors["messages"] == {"0": {"role": ['"\ufffd" is not a valid choice.']}}


# --- Numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "Infinity", "-Infinity", "NaN"])
def test_non_finite_number_in_metadata_is_400_naming_metadata(refused, literal):
    errors = refused(with_raw(item_payload(), "metadata", '{"a": {"b": [' + literal + "]}}"))
    assert errors["metadata"] == [NOT_FINITE]
    assert "JSON parse error" in errors["detail"]


@pytest.mark.parametrize("literal", ["1e999", "NaN", "-Infinity"])
def test_non_finite_confidence_is_400_naming_confidence(refused, literal):
    assert refused(with_raw(item_payload(), "confidence", literal))["confidence"] == [NOT_FINITE]


def test_non_finite_number_in_a_batch_names_the_item(refused):
    items = json.dumps([item_payload(), item_payload(), item_payload(confidence="__x__")])
    errors = refused('{"items": ' + items.replace('"__x__"', "1e999") + "}")
    assert errors["items"] == {"2": {"confidence": [NOT_FINITE]}}


def test_huge_integers_are_400_naming_the_field(refused):
    assert refused(json.dumps(item_payload(confidence=10**400))) == {
        "confidence": ["Must be between 0 and 1."]
    }
    errors = refused(with_raw(item_payload(), "metadata", '{"n": 1' + "0" * 5000 + "}"))
    assert errors["metadata"] == ["Integer has too many digits."]


def test_infinite_metadata_in_a_monitored_project_writes_no_webhook_row(monitor_project):
    # Auto-approved items get a webhook outbox row; 1e999 used to fail that write.
    monitor_project.webhook_url = "https://hooks.example.com/hitl"
    monitor_project.save()
    _key, raw = api_key_create(project=monitor_project, name="monitor client")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert post(client, item_payload(external_id="fine")).status_code == 201
    before = snapshot()
    assert before["webhooks"] == 1
    response = post_text(client, with_raw(item_payload(), "metadata", '{"ratio": 1e999}'))
    assert response.status_code == 400
    assert response.json()["metadata"] == [NOT_FINITE]
    assert snapshot() == before


# --- Repeats within a batch --------------------------------------------------------


def test_identical_item_repeated_in_a_batch_counts_once(client_api):
    item = item_payload(external_id="twice")
    response = post(client_api, {"items": [item, item, item_payload(external_id="once"), item]})
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["existing"]) == (2, 0)
    assert [row["external_id"] for row in body["items"]] == ["twice", "once"]
    assert ReviewItem.objects.filter(external_id="twice").count() == 1
    again = post(client_api, {"items": [item, item]})
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["existing"]) == (0, 1)


def test_same_id_with_different_content_in_a_batch_stays_400(refused):
    batch = [item_payload(external_id="dup"), item_payload(external_id="dup", output="other")]
    errors = refused(json.dumps({"items": batch}))
    assert errors["items"] == {"1": {"external_id": ["Duplicated in this batch."]}}


# --- Exports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"format": "sft_chat", "validation_ratio": NaN}', "validation_ratio"),
        ('{"format": "sft_chat", "seed": 1e999}', "seed"),
        ('{"format": "sft_chat", "model_names": ' + nested(900) + "}", "model_names"),
        ('{"format": "sft_chat", "name": "\\ud800"}', "name"),
        ('{"format": "sft_chat", "reason_codes": ["a\\u0000"]}', "reason_codes"),
        ('{"format": "\\ud800"}', "format"),
        ('{"format": "dpo_pairs", "statuses": ["\\ud800"]}', "statuses"),
        ('{"format": "dpo_pairs", "min_severity": "\\udfff"}', "min_severity"),
        ('{"format": "dpo_pairs", "projects": ["\\ud800"]}', "projects"),
    ],
)
def test_strange_export_requests_are_400_naming_the_field(refused, text, field):
    errors = refused(text, EXPORTS)
    assert field in errors


# --- Query strings -------------------------------------------------------------------


def cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize(
    "url",
    [
        f"{ITEMS}?status=%00",
        f"{ITEMS}?status=%ED%A0%80",
        f"{ITEMS}?model_version=%00",
        f"{ITEMS}?since=%00",
        f"{ITEMS}?since=9999-12-31T23:59:59-14:00",
        f"{ITEMS}?cursor=garbage",
        f"{ITEMS}?cursor=%00",
        f"{ITEMS}?cursor={cursor('p=abc')}",
        f"{ITEMS}?cursor={cursor('p=%00')}",
        f"{ITEMS}?cursor={cursor('p=1e5&r=1')}",
        f"{ITEMS}?cursor={cursor('p=' + '9' * 40)}",
        f"{ITEMS}?cursor={cursor('o=' + '9' * 40)}",
        f"{ITEMS}?page_size=%00",
        f"{ITEMS}?page_size={'9' * 40}",
        f"{ITEMS}abc/",
        f"{ITEMS}{'9' * 40}/",
        f"{EXPORTS}?cursor={cursor('p=abc')}",
        f"{EXPORTS}{'9' * 40}/download/?split=%00",
        "/api/v1/projects/clinical/agreement/?start=%00",
        "/api/v1/projects/clinical/agreement/?end=0001-01-01T00:00:00%2B14:00",
    ],
)
def test_strange_query_strings_are_never_a_server_error(client_api, stored, url):
    before = snapshot(stored)
    response = client_api.get(url)
    assert response.status_code < 500, response.content
    assert snapshot(stored) == before


@pytest.mark.parametrize("position", ["abc", "%00", "1e5"])
def test_cursor_with_a_position_that_is_not_an_id_is_invalid(client_api, stored, position):
    response = client_api.get(f"{ITEMS}?cursor={cursor('p=' + position)}")
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor"


# --- The documented serializer agrees ----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        item_payload(external_id="\ud800"),
        item_payload(output="\udfff"),
        item_payload(metadata={"a": "\ud800"}),
        item_payload(metadata={"\ud800": 1}),
        item_payload(metadata={"a": float("inf")}),
        item_payload(metadata={"a": [float("nan")]}),
        item_payload(metadata={"a": json.loads(nested(64))}),
        item_payload(metadata={"a": json.loads(nested(63))}),
        item_payload(confidence=10**400),
        item_payload(confidence=-(10**400)),
        item_payload(project="a\x00b"),
        item_payload(project="\ud800"),
    ],
)
def test_fast_validator_and_serializer_agree_on_strange_input(raw):
    serializer = ItemInputSerializer(data=raw)
    clean, errors = validate_item(raw)
    assert (clean is not None) == serializer.is_valid(), (errors, serializer.errors)
    assert set(errors) == set(serializer.errors)


def test_validator_refuses_deep_metadata_without_recursing():
    # A Python caller can build what no parser would accept.
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    _clean, errors = validate_item(item_payload(metadata={"a": deep}))
    assert errors == {"metadata": [TOO_DEEP]}


# --- Methods and encodings ---------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", [ITEMS, f"{ITEMS}1/", EXPORTS, f"{EXPORTS}1/"])
def test_other_write_methods_are_refused(client_api, stored, method, url):
    before = snapshot(stored)
    response = getattr(client_api, method)(url, data="{}", content_type="application/json")
    assert response.status_code in (404, 405)
    assert snapshot(stored) == before


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (json.dumps(item_payload(external_id="utf16")).encode("utf-16"), "utf-16", 201),
        (b'{"external_id": "x"}', "bz2_codec", 400),
        (b'{"external_id": "x"}', "no-such-charset", 400),
        (b"\xef\xbb\xbf{}", "utf-8", 400),
    ],
)
def test_body_charsets_are_decoded_or_refused(client_api, stored, body, content_type, status):
    before = snapshot(stored)
    response = client_api.post(
        ITEMS, data=body, content_type=f"application/json; charset={content_type}"
    )
    assert response.status_code == status, response.content
    if status == 400:
        assert snapshot(stored) == before


def test_form_bodies_are_unsupported(client_api, stored):
    before = snapshot(stored)
    response = client_api.post(ITEMS, data={"external_id": "form"}, format="multipart")
    assert response.status_code == 415
    assert snapshot(stored) == before
