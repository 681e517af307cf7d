import json
import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from reviews.models import CheckResult, ReviewItem
from reviews.services.projects import api_key_create
from tests.factories import item_payload, make_project, make_rule

pytestmark = pytest.mark.django_db(transaction=True)


def _post_concurrently(raw_key: str, bodies: list[dict]) -> list:
    barrier = threading.Barrier(len(bodies))
    responses: list = [None] * len(bodies)

    def worker(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        try:
            barrier.wait()
            responses[index] = client.post(
                "/api/v1/items/", data=json.dumps(bodies[index]), content_type="application/json"
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def test_two_concurrent_identical_batches_store_each_item_once():
    assert connection.vendor == "postgresql"
    project = make_project()
    make_rule(project, name="length", kind="max_length", limit=10_000)
    _, raw = api_key_create(project=project, name="race")
    batch = {"items": [item_payload(external_id=f"race-{i}") for i in range(400)]}

    for _ in range(3):
        ReviewItem.objects.filter(project=project).delete()
        first, second = _post_concurrently(raw, [batch, batch])
        assert {first.status_code, second.status_code} <= {200, 201}, (
            first.content,
            second.content,
        )
        assert ReviewItem.objects.filter(project=project).count() == 400
        assert first.json()["created"] + second.json()["created"] == 400
        ids_first = [row["id"] for row in first.json()["items"]]
        ids_second = [row["id"] for row in second.json()["items"]]
        assert ids_first == ids_second
        assert CheckResult.objects.filter(item__project=project).count() == 400
        assert ReviewItem.history.filter(project_id=project.pk, history_type="+").count() == len(
            set(ReviewItem.history.filter(project_id=project.pk).values_list("id", flat=True))
        )


def test_concurrent_overlapping_batches_with_a_conflict():
    project = make_project()
    _, raw = api_key_create(project=project, name="race")
    shared = [item_payload(external_id=f"s-{i}") for i in range(100)]
    changed = [dict(p, output=p["output"] + " (edited)") for p in shared[:1]] + shared[1:]
    first, second = _post_concurrently(raw, [{"items": shared}, {"items": changed}])
    codes = sorted([first.status_code, second.status_code])
    assert codes == [201, 409]
    assert ReviewItem.objects.filter(project=project).count() == 100
