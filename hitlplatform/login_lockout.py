"""The two hooks django-axes calls: the client address and the lockout page.

Settings and the lockout rule are in ``hitlplatform/settings.py`` (login throttling).
"""

import ipaddress

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip_address(request: HttpRequest) -> str | None:
    """The address failed logins are counted against.

    ``REMOTE_ADDR`` unless ``HITL_CLIENT_IP_HEADER`` is set. Then the address is the
    entry ``HITL_TRUSTED_PROXY_COUNT`` places from the right of that header: each
    proxy appends the address it was connected from, so entries further left were
    written by the client and prove nothing. A header missing, too short or not an
    address falls back to ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR")
    header = settings.HITL_CLIENT_IP_HEADER
    if not header:
        return remote
    raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    entries = [entry for entry in raw.split(",") if entry.strip()]
    hops = max(settings.HITL_TRUSTED_PROXY_COUNT, 1)
    if len(entries) < hops:
        return remote
    return _valid_ip(entries[-hops]) or remote


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The admin-styled page shown instead of the login form while a pair is locked.

    The refused attempt has just restarted the cool-off, so the wait ends one
    cool-off from now; ``Retry-After`` says the same to scripts.
    """
    cool_off = settings.AXES_COOLOFF_TIME
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "retry_at": timezone.localtime() + cool_off,
        "cool_off_minutes": int(cool_off.total_seconds() // 60),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    response = TemplateResponse(
        request,
        "admin/lockout.html",
        context,
        status=getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429),
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()
