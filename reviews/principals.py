"""Who is calling: a Django user, or an API client acting for one project."""

from dataclasses import dataclass

from reviews.models import ApiKey, Project


@dataclass(frozen=True)
class ApiClient:
    """The caller behind an API key. Not a Django user: it acts for one project."""

    key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    @property
    def project(self) -> Project:
        return self.key.project

    def __str__(self) -> str:
        return principal_label(self)


def principal_label(principal) -> str:
    """How history rows and exports name the caller: "API key 1a2b3c4d", "user alice".

    The one spelling for every "via" text; empty without a caller (a job, a command).
    """
    if principal is None:
        return ""
    if isinstance(principal, ApiClient):
        return f"API key {principal.key.prefix}"
    return f"user {principal}"
