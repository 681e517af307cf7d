"""Project configuration writes: API keys and the webhook secret."""

from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from reviews.models import ApiKey, Project
from reviews.models.projects import new_webhook_secret
from reviews.selectors import api_key_forget


@transaction.atomic
def api_key_create(*, project: Project, name: str, user=None) -> tuple[ApiKey, str]:
    """Create a key for ``project``; returns the row and the raw key, shown only this once."""
    raw, prefix, hashed = ApiKey.generate()
    key = ApiKey(project=project, name=name, prefix=prefix, hashed_key=hashed, created_by=user)
    key._change_reason = "API key created"
    if user is not None:
        key._history_user = user
    key.save()
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, user=None) -> ApiKey:
    """Revoke ``key``: requests with it fail from the commit on in this process, and
    within ``HITL_API_KEY_CACHE_SECONDS`` in the others. Revoking twice is a no-op."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key._change_reason = "API key revoked"
        if user is not None:
            key._history_user = user
        key.save(update_fields=["revoked_at"])
    # This process stops accepting it now (and once more at commit, in case a request
    # read it again meanwhile); the others within HITL_API_KEY_CACHE_SECONDS.
    api_key_forget(key.hashed_key)
    transaction.on_commit(lambda: api_key_forget(key.hashed_key))
    return key


class SecretAction(StrEnum):
    KEEP = "keep"
    GENERATE = "generate"
    REMOVE = "remove"


def webhook_secret_next(*, current: str, action: str, new_secret: str = "") -> tuple[str, bool]:
    """The webhook secret after an edit, and whether it was generated here.

    The secret is write-only: forms never render it back. A typed ``new_secret``
    replaces the stored one; otherwise ``action`` keeps, generates or removes
    it. A generated secret is shown to its creator once, like an API key.
    """
    if new_secret:
        return new_secret, False
    if action == SecretAction.GENERATE:
        return new_webhook_secret(), True
    if action == SecretAction.REMOVE:
        return "", False
    return current, False
