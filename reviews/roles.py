"""The three staff roles and the model permissions each one's group carries.

A project membership gives a user a role in one project; the user's groups
follow the roles they hold anywhere (``reviews.services.accounts``). Groups
carry model permissions (what admin pages exist for them); which *rows* they
see and change is decided per project by ``reviews.access``.
"""

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from reviews.models import MemberRole

GROUP_REVIEWER = "Reviewer"
GROUP_SENIOR = "Senior reviewer"
GROUP_PROJECT_ADMIN = "Project admin"
ROLE_GROUPS = {
    MemberRole.REVIEWER: GROUP_REVIEWER,
    MemberRole.SENIOR: GROUP_SENIOR,
    MemberRole.ADMIN: GROUP_PROJECT_ADMIN,
}

REVIEWER_PERMISSIONS = frozenset(
    {
        ("reviews", "view_project"),
        ("reviews", "view_reviewitem"),
        ("reviews", "view_checkresult"),
        ("reviews", "view_judgeverdict"),
        ("reviews", "view_assignment"),
        ("reviews", "view_review"),
        ("reviews", "add_review"),
        ("reviews", "view_correctiontriplet"),
    }
)
# Nobody below a superuser creates or deletes projects, items, reviews or claims:
# those records are the audit trail.
ADMIN_EXCLUDED = frozenset(
    {
        ("reviews", "add_project"),
        ("reviews", "delete_project"),
        ("reviews", "add_reviewitem"),
        ("reviews", "delete_reviewitem"),
        ("reviews", "change_review"),
        ("reviews", "delete_review"),
        ("reviews", "delete_assignment"),
        ("reviews", "delete_correctiontriplet"),
        ("adjudication", "delete_adjudicationcase"),
    }
)
ADMIN_USER_PERMISSIONS = frozenset(
    {("auth", "view_user"), ("auth", "add_user"), ("auth", "change_user")}
)


def _action(codename: str) -> str:
    return codename.split("_", 1)[0]


def reviewer_may(app_label: str, codename: str) -> bool:
    return (app_label, codename) in REVIEWER_PERMISSIONS


def senior_may(app_label: str, codename: str) -> bool:
    """Reviewers' permissions, plus working adjudication cases and reading exports."""
    if reviewer_may(app_label, codename):
        return True
    if app_label == "adjudication":
        return (
            _action(codename) in ("view", "add", "change")
            and (
                app_label,
                codename,
            )
            not in ADMIN_EXCLUDED
        )
    return app_label == "datasets" and _action(codename) == "view"


def project_admin_may(app_label: str, codename: str) -> bool:
    """Seniors' permissions, plus configuring their projects and managing reviewer accounts."""
    if senior_may(app_label, codename) or (app_label, codename) in ADMIN_USER_PERMISSIONS:
        return True
    return (
        app_label in ("reviews", "adjudication", "datasets")
        and (app_label, codename) not in ADMIN_EXCLUDED
    )


GROUP_RULES = {
    GROUP_REVIEWER: reviewer_may,
    GROUP_SENIOR: senior_may,
    GROUP_PROJECT_ADMIN: project_admin_may,
}


def roles_sync_permissions(*, group_model, permission_model) -> dict[str, int]:
    """Create the three groups and give each exactly the permissions its rule allows.

    Takes the model classes so the data migration can pass historical models.
    Idempotent; returns the number of permissions per group.
    """
    permissions = list(
        permission_model.objects.select_related("content_type").only(
            "pk", "codename", "content_type__app_label"
        )
    )
    counts = {}
    for name, allowed in GROUP_RULES.items():
        group, _created = group_model.objects.get_or_create(name=name)
        chosen = [p for p in permissions if allowed(p.content_type.app_label, p.codename)]
        group.permissions.set(chosen)
        counts[name] = len(chosen)
    return counts


def roles_sync_after_migrate(sender, using="default", **kwargs) -> None:
    """After each ``migrate``: give the role groups every permission their rules allow.

    Django creates permissions only once all migrations ran, so the groups made
    by migration 0007 miss the permissions of apps migrated after it (on a
    fresh database: every datasets permission, so seniors could not open the
    exports their role allows). Creating them first, for all apps, makes the
    groups complete whatever the order.
    """
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    roles_sync_permissions(group_model=Group, permission_model=Permission)
