"""Reviewer accounts: a user's groups follow the roles of their project memberships."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from reviews.models import ProjectMembership
from reviews.roles import ROLE_GROUPS, roles_sync_permissions


@transaction.atomic
def user_roles_sync(*, user) -> set[str]:
    """Put ``user`` in exactly the role groups of the roles they hold in any project.

    Other groups are left alone. A member needs the admin to review, so a user
    with any membership is made staff (removing memberships never revokes
    staff: that stays a deliberate act). Returns the role groups the user is in.
    Call after any change to the user's memberships.
    """
    roles = set(ProjectMembership.objects.filter(user=user).values_list("role", flat=True))
    wanted = {ROLE_GROUPS[role] for role in roles}
    groups = {group.name: group for group in Group.objects.filter(name__in=ROLE_GROUPS.values())}
    if wanted - set(groups):
        # The migration creates the groups; recreate any deleted since, with their permissions.
        roles_sync_permissions(group_model=Group, permission_model=Permission)
        groups = {g.name: g for g in Group.objects.filter(name__in=ROLE_GROUPS.values())}
    user.groups.remove(*[group for name, group in groups.items() if name not in wanted])
    user.groups.add(*[groups[name] for name in wanted])
    if roles and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return wanted
