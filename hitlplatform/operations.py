"""The operations endpoints (``/healthz``, ``/readyz``, ``/metrics``), answered
before the rest of the middleware.

Load balancers and Prometheus address a machine by its IP and port, so their
Host header is not in ``ALLOWED_HOSTS``, and they probe plain http behind the
TLS terminator, where ``SECURE_SSL_REDIRECT`` would answer 301. Answering these
three paths first keeps host validation and the redirect for every other page.
None of them builds a URL from the Host header or reads a session or cookie.
The same views are routed in ``hitlplatform.urls`` for ``reverse()``.
"""

from hitlplatform import health
from hitlplatform.metrics import views as metrics_views

ENDPOINTS = {
    "/healthz": health.healthz,
    "/readyz": health.readyz,
    "/metrics": metrics_views.metrics,
}


class OperationsEndpointsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = ENDPOINTS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        response = view(request)
        response["X-Content-Type-Options"] = "nosniff"
        return response
