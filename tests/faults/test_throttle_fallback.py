"""With the shared cache (Redis) unreachable the API throttle counts per process."""

import logging

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from hitlplatform import degraded
from reviews.api.auth import LOCAL_THROTTLE_CACHE, ApiKeyRateThrottle

URL = "/api/v1/items/"


def degraded_throttle_metric() -> float:
    """``hitl_degraded_operations_total{kind="throttle"}`` as /metrics shows it."""
    answer = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer faults-metrics")
    assert answer.status_code == 200
    for family in text_string_to_metric_families(answer.content.decode()):
        for sample in family.samples:
            if sample.name == "hitl_degraded_operations_total" and sample.labels == {
                "kind": "throttle"
            }:
                return sample.value
    return 0.0


def test_throttle_falls_back_to_a_local_limit_when_redis_is_down(
    client_api, monkeypatch, settings, private_redis, caplog
):
    settings.HITL_METRICS_TOKEN = "faults-metrics"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url(),
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    monkeypatch.setattr(degraded, "_logged_at", {})
    LOCAL_THROTTLE_CACHE.clear()
    assert client_api.get(URL).status_code == 200  # counted in Redis
    private_redis.stop()
    before = degraded.COUNTS["throttle"]
    metric_before = degraded_throttle_metric()
    with caplog.at_level(logging.WARNING, logger="hitlplatform.degraded"):
        codes = [client_api.get(URL).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]  # the same limit, counted in this process
    assert degraded.COUNTS["throttle"] - before == 4
    assert degraded_throttle_metric() - metric_before == 4  # the metrics say so too
    warnings = [r for r in caplog.records if "throttle" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request
    LOCAL_THROTTLE_CACHE.clear()
