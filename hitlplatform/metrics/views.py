"""``/metrics``: Prometheus text format, behind a bearer token.

``HITL_METRICS_TOKEN`` empty (the default) turns the endpoint off (404).
Otherwise the scraper sends ``Authorization: Bearer <token>``; anything else
gets 401 and not a byte of metrics.
"""

import hmac
import os

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from hitlplatform.metrics import instruments  # noqa: F401  (registers the event metrics)
from hitlplatform.metrics.collector import DatabaseCollector


def bearer_token_valid(request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def exposition() -> bytes:
    """Every metric in the text format: this machine's events and the database gauges."""
    database = CollectorRegistry(auto_describe=True)
    database.register(DatabaseCollector())
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # The sum over every process writing to the directory (web and workers).
        events = CollectorRegistry()
        MultiProcessCollector(events)
    else:
        events = REGISTRY
    return generate_latest(events) + generate_latest(database)


@require_safe
@never_cache
def metrics(request):
    token = settings.HITL_METRICS_TOKEN
    if not token:
        return HttpResponseNotFound("Not found", content_type="text/plain")
    if not bearer_token_valid(request, token):
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain"
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
