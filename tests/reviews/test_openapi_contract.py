"""The OpenAPI contract: security schemes, field types, the submission forms, the error answers.

Schemathesis (tests/schemathesis/run.sh) checks the running server against the
schema; these tests pin what the schema must say, and that the error answers
the API gives carry the declared error body.
"""

import json

import jsonschema
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from reviews.api.auth import ApiKeyRateThrottle
from reviews.models import ReviewItem
from reviews.services.projects import api_key_create
from tests.factories import item_payload

ITEMS = "/api/v1/items/"
METHODS = ("get", "post", "put", "patch", "delete")

# The error answers each operation can give; every one of them, and no other.
ERRORS = {
    ("/api/v1/items/", "get"): {400, 401, 404, 429},
    ("/api/v1/items/", "post"): {400, 401, 403, 409, 413, 415, 429},
    ("/api/v1/items/{id}/", "get"): {401, 404, 429},
    ("/api/v1/exports/", "get"): {400, 401, 403, 404, 429},
    ("/api/v1/exports/", "post"): {400, 401, 403, 413, 415, 429},
    ("/api/v1/exports/{id}/", "get"): {401, 404, 429},
    ("/api/v1/exports/{id}/download/", "get"): {400, 401, 404, 409, 429},
    ("/api/v1/exports/{id}/manifest/", "get"): {401, 404, 429, 409},
    ("/api/v1/projects/{slug}/agreement/", "get"): {400, 401, 404, 429},
    ("/api/v1/otlp/v1/traces", "post"): {400, 401, 403, 413, 415},
}


@pytest.fixture
def schema():
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def component(schema, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_schema_declares_api_key_headers_and_the_session_cookie(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKeyAuth"] == {
        **schemes["apiKeyAuth"],
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    assert "Api-Key <key>" in schemes["apiKeyAuth"]["description"]
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    for _path, _method, operation in operations(schema):
        # Alternatives: any one of them authenticates.
        assert operation["security"] == [
            {"apiKeyAuth": []},
            {"apiKeyHeader": []},
            {"cookieAuth": []},
        ]


def test_every_operation_declares_exactly_the_errors_it_gives(schema):
    declared = {
        (path, method): {int(code) for code in operation["responses"] if int(code) >= 400}
        for path, method, operation in operations(schema)
    }
    assert declared == ERRORS
    for path, method, operation in operations(schema):
        if path.startswith("/api/v1/otlp/"):
            # OTLP answers errors as google.rpc.Status in the request's encoding.
            continue
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (path, method, code)


def test_confidence_is_a_number_in_the_input_and_the_output(schema):
    given = component(schema, "ItemInputRequest")["properties"]["confidence"]
    assert given["type"] == "number"
    assert (given["minimum"], given["maximum"], given["nullable"]) == (0, 1, True)
    shown = component(schema, "ItemOutput")["properties"]["confidence"]
    assert (shown["type"], shown["nullable"]) == ("number", True)


def test_no_schema_field_is_left_untyped(schema):
    untyped = []
    for name, definition in schema["components"]["schemas"].items():
        for field, spec in definition.get("properties", {}).items():
            if not {"type", "$ref", "allOf", "oneOf"} & set(spec):
                untyped.append(f"{name}.{field}")
    assert untyped == []


def test_items_accept_one_item_or_a_batch(schema):
    body = schema["paths"][ITEMS]["post"]["requestBody"]["content"]["application/json"]["schema"]
    forms = component(schema, body["$ref"])["oneOf"]
    assert forms == [
        {"$ref": "#/components/schemas/ItemInputRequest"},
        {"$ref": "#/components/schemas/ItemBatchInputRequest"},
    ]
    items = component(schema, forms[1]["$ref"])["properties"]["items"]
    assert items["items"] == {"$ref": "#/components/schemas/ItemInputRequest"}
    assert (items["minItems"], items["maxItems"]) == (1, settings.HITL_MAX_BATCH)
    answer = schema["paths"][ITEMS]["post"]["responses"]["201"]["content"]["application/json"]
    assert component(schema, answer["schema"]["$ref"])["oneOf"] == [
        {"$ref": "#/components/schemas/ItemOutput"},
        {"$ref": "#/components/schemas/BatchResult"},
    ]


def test_required_item_strings_must_hold_more_than_whitespace(schema):
    fields = component(schema, "ItemInputRequest")["properties"]
    for name in ("external_id", "prompt", "model_name", "model_version"):
        assert fields[name]["pattern"] == r"\S", name
    assert "pattern" not in fields["output"]


def test_download_declares_the_content_types_it_streams(schema):
    answer = schema["paths"]["/api/v1/exports/{id}/download/"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"application/jsonl", "text/csv"}
    assert "ETag" in answer["headers"]


def post(client, body, **extra):
    return client.post(ITEMS, data=json.dumps(body), content_type="application/json", **extra)


@pytest.fixture
def error_answers(client_api, project, reviewer, settings, monkeypatch):
    """One real answer for each error status of the items endpoint."""
    session = APIClient()
    session.force_login(reviewer)
    post(client_api, item_payload(external_id="twice"))
    answers = {
        400: post(client_api, {"prompt": 5}),
        401: post(APIClient(), item_payload()),
        403: post(session, item_payload(project="clinical")),
        404: client_api.get(f"{ITEMS}999999/"),
        409: post(client_api, item_payload(external_id="twice", output="Different.")),
        415: client_api.post(ITEMS, data="a=b", content_type="application/x-www-form-urlencoded"),
    }
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    answers[413] = post(client_api, item_payload(output="y" * 5000))
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = limit
    # A fresh key: DRF leaves out Retry-After once a caller is far over its rate.
    _key, raw = api_key_create(project=project, name="throttled")
    throttled = APIClient()
    throttled.credentials(HTTP_X_API_KEY=raw)
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    throttled.get(ITEMS)
    answers[429] = throttled.get(ITEMS)
    return answers


def test_error_answers_carry_the_declared_error_body(schema, error_answers):
    error_body = component(schema, "#/components/schemas/Error")
    for status, response in error_answers.items():
        assert response.status_code == status, (status, response.content)
        assert response["Content-Type"] == "application/json", status
        jsonschema.validate(response.json(), error_body)
    assert error_answers[401]["WWW-Authenticate"] == "Api-Key"
    assert int(error_answers[429]["Retry-After"]) > 0
    assert error_answers[413].json()["code"] == "too_large"
    assert error_answers[409].json()["code"] == "conflict"
    assert error_answers[403].json()["code"] == "not_allowed"


def test_unsupported_media_type_is_415_and_stores_nothing(client_api):
    response = client_api.post(ITEMS, data="<item/>", content_type="application/xml")
    assert response.status_code == 415
    assert not ReviewItem.objects.exists()


@pytest.mark.parametrize("page_size", ["abc", "0", "-3", "null"])
def test_unreadable_page_size_is_400(client_api, page_size):
    response = client_api.get(ITEMS, {"page_size": page_size})
    assert response.status_code == 400
    assert "page_size" in response.json()


def test_empty_optional_query_values_count_as_absent(client_api, project):
    post(client_api, item_payload())
    response = client_api.get(ITEMS, {"status": "", "page_size": "", "since": "", "cursor": ""})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_page_size_above_the_maximum_is_cut_to_it(client_api):
    assert client_api.get(ITEMS, {"page_size": "100000"}).status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/items/0.5/", "/api/v1/items//", "/api/v1/projects/a%20b/agreement/"]
)
def test_api_addresses_no_route_matches_answer_json_404(client_api, path):
    response = client_api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
