import json
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from reviews import selectors
from reviews.api.auth import ApiKeyRateThrottle
from reviews.models import ApiKey, ReviewItem
from reviews.services.projects import api_key_create, api_key_revoke
from tests.factories import ingest, item_payload, make_project

URL = "/api/v1/items/"


def post(client, body, **extra):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **extra)


def test_single_item_is_stored_checked_and_pending_review(client_api, project):
    response = post(client_api, item_payload(external_id="a-1"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["external_id"] == "a-1"
    assert body["status"] == "pending_review"
    assert body["is_final"] is False
    assert body["final_output"] is None
    assert body["message"] == "Pending expert review; not released yet."
    assert ReviewItem.objects.get(pk=body["id"]).project == project


def test_identical_resubmit_returns_stored_item(client_api):
    payload = item_payload(external_id="a-2")
    first = post(client_api, payload)
    again = post(client_api, payload)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert ReviewItem.objects.filter(external_id="a-2").count() == 1


def test_conflicting_resubmit_is_409_and_changes_nothing(client_api):
    payload = item_payload(external_id="a-3")
    post(client_api, payload)
    response = post(client_api, {**payload, "output": "Something else entirely."})
    assert response.status_code == 409
    assert response.json()["conflicting_external_ids"] == ["a-3"]
    assert ReviewItem.objects.get(external_id="a-3").output == payload["output"]


def test_batch_is_stored_all_together(client_api):
    items = [item_payload(external_id=f"b-{i}") for i in range(5)]
    response = post(client_api, {"items": items})
    assert response.status_code == 201
    body = response.json()
    assert body["created"] == 5 and body["existing"] == 0
    assert [row["external_id"] for row in body["items"]] == [f"b-{i}" for i in range(5)]
    resubmit = post(client_api, {"items": [*items[:2], item_payload(external_id="b-new")]})
    assert resubmit.status_code == 201
    assert resubmit.json()["created"] == 1 and resubmit.json()["existing"] == 2


def test_batch_with_one_bad_item_stores_nothing(client_api):
    items = [item_payload(external_id=f"c-{i}") for i in range(4)]
    items[2]["confidence"] = 3
    del items[3]["prompt"]
    response = post(client_api, {"items": items})
    assert response.status_code == 400
    errors = response.json()["items"]
    assert set(errors) == {"2", "3"}
    assert "confidence" in errors["2"]
    assert errors["3"]["prompt"] == ["This field is required."]
    assert not ReviewItem.objects.filter(external_id__startswith="c-").exists()


def test_batch_conflict_stores_nothing_of_the_batch(client_api):
    post(client_api, item_payload(external_id="d-1", output="original"))
    batch = [item_payload(external_id="d-2"), item_payload(external_id="d-1", output="changed")]
    assert post(client_api, {"items": batch}).status_code == 409
    assert not ReviewItem.objects.filter(external_id="d-2").exists()


def test_same_id_twice_in_one_batch_with_different_content_is_400(client_api):
    batch = [item_payload(external_id="e-1"), item_payload(external_id="e-1", output="other")]
    response = post(client_api, {"items": batch})
    assert response.status_code == 400
    assert response.json()["items"]["1"]["external_id"] == ["Duplicated in this batch."]


@pytest.mark.parametrize(
    "field", ["external_id", "prompt", "output", "model_name", "model_version"]
)
def test_missing_required_field_is_400_naming_it(client_api, field):
    payload = item_payload()
    del payload[field]
    response = post(client_api, payload)
    assert response.status_code == 400
    assert response.json()[field] == ["This field is required."]
    assert ReviewItem.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt", 12, "Must be a string."),
        ("output", ["a"], "Must be a string."),
        ("external_id", True, "Must be a string."),
        ("confidence", "0.5", "Must be a number between 0 and 1."),
        ("confidence", True, "Must be a number between 0 and 1."),
        ("confidence", -0.01, "Must be between 0 and 1."),
        ("confidence", 1.5, "Must be between 0 and 1."),
        ("messages", "hi", None),
        ("context", {"text": "x"}, None),
        ("metadata", ["x"], None),
    ],
)
def test_wrong_types_and_ranges_are_400_with_field_messages(client_api, field, value, message):
    response = post(client_api, item_payload(**{field: value}))
    assert response.status_code == 400
    errors = response.json()
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert ReviewItem.objects.count() == 0


def test_nan_confidence_is_400(client_api):
    body = json.dumps(item_payload()).replace('"confidence": 0.9', '"confidence": NaN')
    assert "NaN" in body
    response = client_api.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    assert ReviewItem.objects.count() == 0


def test_nan_confidence_as_value_is_refused_by_the_field(client_api):
    # A client library that serialises NaN as a float must not get past the field.
    from reviews.api.serializers import ConfidenceField

    with pytest.raises(Exception, match="finite"):
        ConfidenceField().run_validation(float("nan"))


def test_unknown_project_is_400(client_api):
    response = post(client_api, item_payload(project="nope"))
    assert response.status_code == 400
    assert response.json()["project"] == ["Unknown project 'nope'."]


def test_key_cannot_submit_to_another_project(client_api, db):
    other = make_project(slug="other")
    response = post(client_api, item_payload(project=other.slug))
    assert response.status_code == 400
    assert not ReviewItem.objects.filter(project=other).exists()


def test_oversize_field_is_400(client_api, settings):
    response = post(client_api, item_payload(output="x" * (settings.HITL_MAX_TEXT_CHARS + 1)))
    assert response.status_code == 400
    assert "output" in response.json()


def test_oversize_request_body_is_413(client_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = post(client_api, item_payload(output="y" * 5000))
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert ReviewItem.objects.count() == 0


def test_non_utf8_body_is_400(client_api):
    body = json.dumps(item_payload()).encode().replace(b"paracetamol", b"parac\xe9tamol")
    response = client_api.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "utf-8" in response.json()["detail"].lower()


def test_batch_over_the_limit_is_400(client_api, settings):
    items = [item_payload() for _ in range(settings.HITL_MAX_BATCH + 1)]
    response = post(client_api, {"items": items})
    assert response.status_code == 400
    assert "items" in response.json()
    assert ReviewItem.objects.count() == 0


def test_body_that_is_not_an_object_is_400(client_api):
    response = post(client_api, [item_payload()])
    assert response.status_code == 400


def test_missing_or_revoked_key_is_refused(project):
    anonymous = APIClient()
    assert post(anonymous, item_payload()).status_code in (401, 403)
    key, raw = api_key_create(project=project, name="to revoke")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert post(client, item_payload()).status_code == 201
    api_key_revoke(key=key)
    response = post(client, item_payload())
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API key."


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_seconds(
    project, monkeypatch, settings
):
    settings.HITL_API_KEY_CACHE_SECONDS = 5
    now = [1000.0]
    monkeypatch.setattr(selectors, "_clock", lambda: now[0])
    key, raw = api_key_create(project=project, name="elsewhere")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get(URL).status_code == 200
    # Revoked as another web process or a shell would: this process is not told.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    now[0] += 4.9
    assert client.get(URL).status_code == 200
    now[0] += 0.2
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API key."


@pytest.mark.django_db(transaction=True)
def test_a_post_with_the_cached_key_of_a_project_deleted_elsewhere_is_not_a_500(
    project, monkeypatch, settings
):
    """The key's rows are reused for a few seconds; its project deleted meanwhile by
    another process makes the INSERT's foreign key fail (checked at commit, hence a
    transactional test): a 409 to retry, then a 401."""
    settings.HITL_API_KEY_CACHE_SECONDS = 5
    monkeypatch.setattr(selectors, "_clock", lambda: 1000.0)
    doomed = make_project(slug="doomed")
    _, raw = api_key_create(project=doomed, name="soon gone")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get(URL).status_code == 200
    # Deleted as the admin in another web process would: this process is not told.
    type(doomed).objects.filter(pk=doomed.pk).delete()
    response = post(client, item_payload(external_id="gone-1"))
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "conflict"
    assert not ReviewItem.objects.filter(external_id="gone-1").exists()
    response = post(client, item_payload(external_id="gone-1"))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API key."


def test_requests_are_throttled_per_key(client_api, monkeypatch, project):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    codes = [client_api.get(URL).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    _, other_raw = api_key_create(project=project, name="second key")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_raw}")
    assert other.get(URL).status_code == 200


def test_detail_shows_checks_and_hides_other_projects(client_api, db):
    created = post(client_api, item_payload(external_id="f-1")).json()
    detail = client_api.get(f"{URL}{created['id']}/")
    assert detail.status_code == 200
    assert detail.json()["checks"] == []
    [foreign] = ingest(make_project(slug="foreign"))
    assert client_api.get(f"{URL}{foreign.pk}/").status_code == 404


def test_final_item_shows_released_output(client_api, project):
    created = post(client_api, item_payload(external_id="g-1", output="Released text")).json()
    ReviewItem.objects.filter(pk=created["id"]).update(
        status="corrected",
        final_output="Corrected text",
        final_verdict="correct",
        final_reason_code="factual_error",
        final_severity="major",
    )
    body = client_api.get(f"{URL}{created['id']}/").json()
    assert body["is_final"] is True
    assert body["final_output"] == "Corrected text"
    assert body["decision"]["verdict"] == "correct"
    assert body["decision"]["reason_code"] == "factual_error"


def test_list_filters_and_cursor_paginates(client_api, project):
    ingest(project, *[item_payload(external_id=f"h-{i}", model_version="v1") for i in range(5)])
    ingest(project, *[item_payload(external_id=f"k-{i}", model_version="v2") for i in range(3)])
    response = client_api.get(URL, {"model_version": "v1", "page_size": 2})
    assert response.status_code == 200
    page = response.json()
    assert [row["external_id"] for row in page["results"]] == ["h-4", "h-3"]
    seen = [row["external_id"] for row in page["results"]]
    while page["next"]:
        page = client_api.get(page["next"]).json()
        seen += [row["external_id"] for row in page["results"]]
    assert sorted(seen) == [f"h-{i}" for i in range(5)]
    assert client_api.get(URL, {"status": "approved"}).json()["results"] == []
    assert client_api.get(URL, {"since": "2999-01-01T00:00:00Z"}).json()["results"] == []


@pytest.mark.parametrize("params", [{"status": "bogus"}, {"since": "yesterday"}])
def test_list_with_bad_filter_is_400(client_api, params):
    response = client_api.get(URL, params)
    assert response.status_code == 400
    assert set(params) <= set(response.json())


def test_list_query_count_is_constant(client_api, project, django_assert_max_num_queries):
    ingest(project, *[item_payload() for _ in range(30)])
    with django_assert_max_num_queries(4):
        assert len(client_api.get(URL).json()["results"]) == 30


def test_openapi_schema_and_docs_are_served(client_api, admin_user):
    client = APIClient()
    client.force_login(admin_user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/items/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assets = _asset_urls(docs.content.decode())
    assert any(urlsplit(url).path.endswith("swagger-ui-bundle.js") for url in assets)
    # Every script and stylesheet comes from this server, none from a CDN.
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and parts.path.startswith("/"), url


class _AssetCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


def _asset_urls(html: str) -> list[str]:
    """The URLs of a page's external scripts, stylesheets and icons."""
    collector = _AssetCollector()
    collector.feed(html)
    return collector.urls
