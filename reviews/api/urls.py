from django.urls import path
from rest_framework.routers import SimpleRouter

from reviews.api.otlp import OtlpTracesView
from reviews.api.views import ItemViewSet

router = SimpleRouter()
router.register("items", ItemViewSet, basename="item")

urlpatterns = [
    # The path OTLP exporters append to a base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT).
    path("otlp/v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    *router.urls,
]
