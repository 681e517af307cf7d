"""Who is calling, and whether they may knock: API keys, the role gate, throttles."""

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions, throttling

from hitlplatform.degraded import degraded_record
from reviews import access
from reviews.errors import NotAllowed
from reviews.models.projects import hash_api_key
from reviews.principals import ApiClient
from reviews.selectors import api_key_recent


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
        # With its project, judge configuration and check rules (what ingest needs),
        # reused for a few seconds: revocation reaches other processes within that.
        key = api_key_recent(hash_api_key(raw), max_age=settings.HITL_API_KEY_CACHE_SECONDS)
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return ApiClient(key=key), key

    def authenticate_header(self, request):
        return self.keyword


class HoldsCapability(permissions.IsAuthenticated):
    """The door of a collection: the caller holds the action's capability in some project.

    A view names the capability per action in ``capability_anywhere``; actions
    it leaves out only need an authenticated caller. Object endpoints restrict
    their queryset through ``reviews.access`` instead, so an object outside what
    the caller may see is a 404 whether it exists or not.
    """

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        wanted = getattr(view, "capability_anywhere", {}).get(getattr(view, "action", None))
        if wanted is not None and not access.may_anywhere(request.user, wanted):
            # A domain refusal, so the body carries its code like the per-project one.
            raise NotAllowed("Your roles allow this in no project.")
        return True


# Where the throttle counts while the shared cache (Redis) is unreachable.
LOCAL_THROTTLE_CACHE = LocMemCache("hitl-api-throttle", {})


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (session users are throttled per user).

    Counts in the shared cache. When Redis is unreachable the throttle fails
    open to a per-process limit (the same rate, counted in this process), logs
    and counts it (``hitlplatform.degraded``, kind ``throttle``): an outage of
    the cache must not stop the API from storing items.
    """

    scope = "api_key"

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            degraded_record(
                kind="throttle",
                message=f"API throttle counts per process, the cache is unreachable ({exc})",
            )
            self.cache = LOCAL_THROTTLE_CACHE
            return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.user, ApiClient):
            ident = f"key-{request.user.key.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
