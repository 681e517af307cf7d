"""Property: no body posted to a write endpoint gives a 5xx, and a refused one stores nothing.

Bodies are generated as JSON text, not as Python values, so they can hold what
``json.dumps`` never writes but clients send: nesting thousands of levels deep,
``1e999``, integers of 5,000 digits, lone surrogates and NUL as ``\\u``
escapes, unclosed brackets, bytes that are not UTF-8. Most bodies are a valid
item or export request with a few fields replaced, removed or added, so they get
past the parser and reach the validators and the services.
"""

import io
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from datasets.models import DatasetExport, ExportFormat
from reviews.api.auth import ApiKeyRateThrottle
from reviews.api.parsers import JSONParser, _max_depth
from reviews.models import CheckResult, ReviewItem, WebhookDelivery
from tests.factories import ingest

ITEMS = "/api/v1/items/"
EXPORTS = "/api/v1/exports/"

BASE_ITEM = {
    "external_id": "prop-1",
    "prompt": "What is the maximum daily dose of paracetamol for adults?",
    "output": "For healthy adults the usual maximum is 4 g per day, split into doses.",
    "model_name": "acme-med",
    "model_version": "2026-11-01",
    "confidence": 0.9,
    "messages": [{"role": "user", "content": "Hello"}],
    "context": ["A retrieved document.", {"text": "t", "source": "kb"}],
    "metadata": {"trace": "abc", "tokens": [1, 2, 3]},
}
BASE_EXPORT = {"format": ExportFormat.SFT_CHAT.value}
EXPORT_FIELDS = [
    "format",
    "name",
    "projects",
    "decided_after",
    "decided_before",
    "model_names",
    "model_versions",
    "statuses",
    "min_severity",
    "reason_codes",
    "adjudicated_only",
    "exclude_audit",
    "seed",
    "validation_ratio",
    "deduplicate",
]

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- JSON text ---------------------------------------------------------------------

TEXT = st.one_of(
    # Every code point, lone surrogates and NUL included.
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(["", " ", "\x00", "\ud800", "a\udfffb", '"', "\\", "[{", "clinical", "user"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # NaN and infinities: json.dumps writes them as NaN / Infinity
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def _nest(levels: int, kind: str) -> str:
    if kind == "list":
        return "[" * levels + "]" * levels
    if kind == "object":
        return '{"a":' * levels + "0" + "}" * levels
    return "[" * levels  # never closed


DEEP = st.builds(
    _nest, st.integers(min_value=1, max_value=3000), st.sampled_from(["list", "object", "open"])
)
RAW = st.sampled_from(
    [
        "1e999",
        "-1e999",
        "NaN",
        "Infinity",
        "-Infinity",
        "1" + "0" * 5000,
        "9" * 300,
        "-0",
        "1E-400",
        '"\\ud800"',
        '"\\udc00\\ud800"',
        '"\\u0000"',
        '{"\\ud800": 1}',
        '"unterminated',
        "[1,]",
        "",
    ]
)
FRAGMENTS = st.one_of(JSON_VALUES.map(json.dumps), DEEP, RAW)


# Strange but storable: any code point but NUL and surrogates, integers beyond 64
# bits, floats that round to zero, metadata at the nesting limit.
SAFE_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12
).filter(str.strip)
SAFE_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(allow_nan=False, allow_infinity=False),
        SAFE_TEXT,
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(SAFE_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
VALID_ITEM_VALUES = {
    "prompt": SAFE_TEXT,
    "output": SAFE_TEXT | st.just(""),
    "model_name": SAFE_TEXT,
    "confidence": st.none() | st.floats(min_value=0, max_value=1) | st.sampled_from([0, 1]),
    "messages": st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": SAFE_TEXT}
        ),
        max_size=3,
    ),
    "context": st.lists(SAFE_TEXT | st.fixed_dictionaries({"text": SAFE_TEXT}), max_size=3),
    "metadata": st.dictionaries(SAFE_TEXT, SAFE_VALUES, max_size=4)
    | st.integers(min_value=1, max_value=63).map(lambda n: json.loads(_nest(n, "object"))),
}


def _object(fields: dict[str, str]) -> str:
    """An object's JSON text from keys and their values' JSON text."""
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in fields.items()) + "}"


@st.composite
def _mutated(draw, base: dict, keys: list[str], valid: dict | None = None) -> str:
    """``base`` as JSON text with up to three fields removed, added, or replaced by
    a strange fragment or (for the fields in ``valid``) a strange but valid value."""
    valid = valid or {}
    fields = {key: json.dumps(value) for key, value in base.items()}
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        key = draw(st.sampled_from(keys) | TEXT)
        action = draw(st.sampled_from(["valid", "strange", "remove"]))
        if action == "remove":
            fields.pop(key, None)
        elif action == "valid" and key in valid:
            fields[key] = json.dumps(draw(valid[key]))
        else:
            fields[key] = draw(FRAGMENTS)
    return _object(fields)


ITEM_KEYS = [*BASE_ITEM, "project"]
# A few fixed ids, to resubmit and conflict, and fresh ones, to store.
ITEM_IDS = st.sampled_from(["prop-1", "prop-2", "stored"]) | st.integers(min_value=0).map(
    "prop-{}".format
)


@st.composite
def item_bodies(draw) -> str:
    base = {**BASE_ITEM, "external_id": draw(ITEM_IDS)}
    return draw(_mutated(base, ITEM_KEYS, VALID_ITEM_VALUES))


@st.composite
def batch_bodies(draw) -> str:
    items = draw(st.lists(item_bodies(), min_size=1, max_size=4))
    if draw(st.booleans()):
        items.append(items[0])  # an identical repeat
    envelope = {"items": "[" + ",".join(items) + "]"}
    if draw(st.booleans()):
        envelope[draw(TEXT)] = draw(FRAGMENTS)
    return _object(envelope)


ANY_BODY = st.one_of(FRAGMENTS, st.binary(max_size=40))
ITEM_POSTS = st.one_of(item_bodies(), item_bodies(), batch_bodies(), ANY_BODY)
EXPORT_POSTS = st.one_of(_mutated(BASE_EXPORT, EXPORT_FIELDS), ANY_BODY)


# --- The endpoints ------------------------------------------------------------------


@pytest.fixture
def stored(project):
    return ingest(project, {**BASE_ITEM, "external_id": "stored"})[0]


@pytest.fixture
def unthrottled(monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1000000/min"})


def _state(stored: ReviewItem) -> dict:
    item = ReviewItem.objects.get(pk=stored.pk)
    return {
        "items": ReviewItem.objects.count(),
        "history": ReviewItem.history.count(),
        "checks": CheckResult.objects.count(),
        "webhooks": WebhookDelivery.objects.count(),
        "exports": DatasetExport.objects.count(),
        "stored": (item.payload_hash, item.status, item.updated_at, item.metadata),
    }


def _post_and_check(client, url: str, body: str | bytes, stored: ReviewItem) -> None:
    before = _state(stored)
    response = client.post(url, data=body, content_type="application/json")
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.content
    assert response.status_code != 429
    after = _state(stored)
    assert after["stored"] == before["stored"]
    if response.status_code >= 400:
        assert after == before, response.content


@SETTINGS
@given(body=ITEM_POSTS)
def test_item_posts_never_fail_and_refusals_store_nothing(client_api, stored, unthrottled, body):
    _post_and_check(client_api, ITEMS, body, stored)


@SETTINGS
@given(body=EXPORT_POSTS)
def test_export_posts_never_fail_and_refusals_store_nothing(client_api, stored, unthrottled, body):
    _post_and_check(client_api, EXPORTS, body, stored)


# --- The parser on its own ------------------------------------------------------------


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=300, deadline=None, database=None)
@given(value=JSON_VALUES)
def test_depth_scan_is_exact_whatever_the_strings_hold(value):
    assert _max_depth(json.dumps(value)) == _depth(value)
    assert _max_depth(json.dumps(value, ensure_ascii=False)) == _depth(value)


FINITE_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        TEXT,
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=FINITE_VALUES)
def test_parser_reads_finite_documents_as_json_does(value):
    text = json.dumps(value)
    assert JSONParser().parse(io.BytesIO(text.encode()), parser_context={}) == json.loads(text)
