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
        return f"API key {self.key.prefix}"
