"""API key authentication: a key belongs to one project and acts for it."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, throttling

from reviews.models import ApiKey
from reviews.models.projects import hash_api_key
from reviews.principals import ApiClient


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key <key>`` (or ``Bearer <key>``, or ``X-API-Key: <key>``)."""

    keyword = "Api-Key"

    def authenticate(self, request):
        raw = request.META.get("HTTP_X_API_KEY", "")
        if not raw:
            parts = authentication.get_authorization_header(request).split()
            if not parts or parts[0].lower() not in (b"api-key", b"bearer"):
                return None
            if len(parts) != 2:
                raise exceptions.AuthenticationFailed(_("Malformed API key header."))
            try:
                raw = parts[1].decode()
            except UnicodeDecodeError as exc:
                raise exceptions.AuthenticationFailed(_("Malformed API key header.")) from exc
        key = (
            ApiKey.objects.select_related("project")
            .filter(hashed_key=hash_api_key(raw), revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return ApiClient(key=key), key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (session users are throttled per user)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.user, ApiClient):
            ident = f"key-{request.user.key.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
