from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from adjudication.api import AgreementView
from hitlplatform import health
from hitlplatform.metrics import views as metrics_views

# API addresses no route matches answer in JSON (hitlplatform.api.page_not_found).
handler404 = "hitlplatform.api.page_not_found"
# A database outage is a 503 with Retry-After (hitlplatform.unavailable), not a 500.
handler500 = "hitlplatform.unavailable.server_error"

admin.site.site_header = "HITL Review"
admin.site.site_title = "HITL Review"
admin.site.index_title = "Projects, review queues, adjudication and datasets"

urlpatterns = [
    # Answered by hitlplatform.operations.OperationsEndpointsMiddleware before host
    # validation; routed here too so reverse() and the permission matrix know them.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path(
        "api/v1/projects/<slug:slug>/agreement/",
        AgreementView.as_view(),
        name="project-agreement",
    ),
    path("api/v1/", include("reviews.api.urls")),
    path("api/v1/", include("datasets.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script
    # under the Content-Security-Policy (templates/api/swagger_ui.html).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
]
