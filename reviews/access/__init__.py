"""Who may do what, in which project: the one authorization module.

Every admin page, custom admin view, API view and download asks this module
about the object's project. A principal is a Django user or an ``ApiClient``
(an API key acting for one project). A user's role in a project comes from
their ``ProjectMembership`` there; Django's global group permissions may gate
a model's pages, but the decision about an object is the role in that
object's project, never a role held elsewhere.

Superusers may do everything everywhere. Inactive users may do nothing. An
API key sees, submits to and exports from its own project only, and never
reviews, adjudicates or administers.
"""

from enum import StrEnum

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet

from reviews.models import MemberRole, Project, ProjectMembership
from reviews.principals import ApiClient


class Capability(StrEnum):
    # Items, their checks, judge verdicts, the timeline, dashboards. An item's
    # simple-history pages (its raw audit trail) need ADMINISTER.
    VIEW = "view"
    REVIEW = "review"  # claim items and submit reviews
    ADJUDICATE = "adjudicate"  # work the adjudication queue, decide cases, reopen final items
    # Agreement figures name colleagues and their overturn rates: seniors, and the
    # project's own API key (the application's dashboard), may read them.
    READ_AGREEMENT = "read_agreement"
    DOWNLOAD_EXPORTS = "download_exports"  # list and download dataset exports
    BUILD_EXPORTS = "build_exports"  # ask for a new dataset export, retry or delete one
    SUBMIT = "submit"  # submit outputs for review (the API)
    ADMINISTER = "administer"  # project settings, API keys, judge, webhooks, deliveries, alerts
    MANAGE_MEMBERS = "manage_members"  # reviewer accounts and their roles in the project


_REVIEWER = frozenset({Capability.VIEW, Capability.REVIEW})
_SENIOR = _REVIEWER | {
    Capability.ADJUDICATE,
    Capability.READ_AGREEMENT,
    Capability.DOWNLOAD_EXPORTS,
}
_ADMIN = frozenset(Capability)
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    MemberRole.REVIEWER: _REVIEWER,
    MemberRole.SENIOR: _SENIOR,
    MemberRole.ADMIN: _ADMIN,
}
API_KEY_CAPABILITIES = frozenset(
    {
        Capability.VIEW,
        Capability.SUBMIT,
        Capability.READ_AGREEMENT,
        Capability.DOWNLOAD_EXPORTS,
        Capability.BUILD_EXPORTS,
    }
)


def roles_with(capability: Capability) -> list[str]:
    """The membership roles that carry ``capability``."""
    return [role for role, caps in ROLE_CAPABILITIES.items() if capability in caps]


def _is_user(principal) -> bool:
    return (
        principal is not None
        and not isinstance(principal, ApiClient)
        and principal.is_authenticated
        and principal.is_active
    )


def _roles(principal) -> dict[int, str] | None:
    """The user's roles by project id, read once per request; None outside a request.

    ``RolesPerRequestMiddleware`` marks the request's user: within one request
    a page asks about many models and rows, and the memberships of the person
    asking do not change meanwhile. Elsewhere (services, jobs) every answer
    reads the database afresh.
    """
    cache = getattr(principal, "_hitl_access_cache", None)
    if cache is None:
        return None
    if "roles" not in cache:
        cache["roles"] = dict(
            ProjectMembership.objects.filter(user_id=principal.pk).values_list("project_id", "role")
        )
    return cache["roles"]


class RolesPerRequestMiddleware:
    """Lets ``reviews.access`` read the request user's memberships once per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            user._hitl_access_cache = {}
        return self.get_response(request)


def projects_where(principal, capability: Capability) -> QuerySet[Project]:
    """The projects in which ``principal`` holds ``capability``."""
    if isinstance(principal, ApiClient):
        if capability in API_KEY_CAPABILITIES:
            return Project.objects.filter(pk=principal.key.project_id)
        return Project.objects.none()
    if not _is_user(principal):
        return Project.objects.none()
    if principal.is_superuser:
        return Project.objects.all()
    roles = _roles(principal)
    wanted = roles_with(capability)
    if roles is not None:
        return Project.objects.filter(pk__in=[pk for pk, role in roles.items() if role in wanted])
    memberships = ProjectMembership.objects.filter(user_id=principal.pk, role__in=wanted)
    return Project.objects.filter(pk__in=memberships.values("project_id"))


def role_in(principal, project: Project | int) -> str | None:
    """The role ``principal`` holds in ``project``: a ``MemberRole``, or None.

    Superusers hold the admin role everywhere; an API key holds no role.
    """
    if not _is_user(principal):
        return None
    if principal.is_superuser:
        return MemberRole.ADMIN
    project_id = project.pk if isinstance(project, Project) else project
    roles = _roles(principal)
    if roles is not None:
        return roles.get(project_id)
    return (
        ProjectMembership.objects.filter(user_id=principal.pk, project_id=project_id)
        .values_list("role", flat=True)
        .first()
    )


def may(principal, capability: Capability, project: Project | int | None) -> bool:
    """Whether ``principal`` holds ``capability`` in ``project`` (None: in no project)."""
    if project is None:
        return False
    project_id = project.pk if isinstance(project, Project) else project
    if isinstance(principal, ApiClient):
        return capability in API_KEY_CAPABILITIES and principal.key.project_id == project_id
    if not _is_user(principal):
        return False
    if principal.is_superuser:
        return True
    role = role_in(principal, project_id)
    return role is not None and capability in ROLE_CAPABILITIES[role]


def may_see_candidate_models(principal, *, project_id: int, is_final: bool) -> bool:
    """Whether ``principal`` may see which models wrote a comparison's candidates.

    Preferences are given blind: until the item is final only those who submit
    to the project (its API key, its admins, superusers) see the models; its
    reviewers and seniors see labels only, on every page and in the API.
    """
    return is_final or may(principal, Capability.SUBMIT, project_id)


def may_anywhere(principal, capability: Capability) -> bool:
    """Whether ``principal`` holds ``capability`` in at least one project (superusers: always)."""
    if isinstance(principal, ApiClient):
        # The key's own project, loaded with the key: no query.
        return capability in API_KEY_CAPABILITIES
    if _is_user(principal) and principal.is_superuser:
        return True
    roles = _roles(principal) if _is_user(principal) else None
    if roles is not None:
        return any(capability in ROLE_CAPABILITIES[role] for role in roles.values())
    return projects_where(principal, capability).exists()


def may_in_all(principal, capability: Capability, project_ids) -> bool:
    """Whether ``principal`` holds ``capability`` in every one of ``project_ids``."""
    wanted = set(project_ids)
    if not wanted:
        return False
    held = set(
        projects_where(principal, capability).filter(pk__in=wanted).values_list("pk", flat=True)
    )
    return held == wanted


def is_operator(principal) -> bool:
    """Operations pages (the RQ dashboard: empty, requeue, delete jobs) are superuser-only."""
    return _is_user(principal) and principal.is_superuser


# --- Accounts ------------------------------------------------------------------


def users_managed_by(principal) -> QuerySet:
    """The accounts ``principal`` may change: every membership in projects they manage.

    A project admin manages users none of whose memberships lies outside the
    projects they administer (including accounts in no project yet), never a
    superuser, an account with direct permissions, or themselves (their own
    password has the admin's own page). Superusers manage everyone.
    """
    User = get_user_model()
    if not _is_user(principal):
        return User.objects.none()
    if principal.is_superuser:
        return User.objects.all()
    managed = projects_where(principal, Capability.MANAGE_MEMBERS).values("pk")
    outside = ProjectMembership.objects.filter(user_id=OuterRef("pk")).exclude(
        project_id__in=managed
    )
    # Direct model permissions make an account more than a reviewer: superusers' business.
    direct = User.user_permissions.through.objects.filter(user_id=OuterRef("pk"))
    return (
        User.objects.filter(is_superuser=False)
        .exclude(Exists(outside))
        .exclude(Exists(direct))
        .exclude(pk=principal.pk)
    )
