"""Who sees and changes what in the admin: project scoping and reviewer accounts.

Every project-bound admin page shows only the rows of projects the user is a
member of (``projects_visible_to``); changing them needs the project admin
role in that project. Superusers and project admins manage reviewer accounts:
create, deactivate, and assign projects and roles (memberships inline).
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, OuterRef, Q

from reviews.models import Project, ProjectMembership
from reviews.selectors import projects_administered_by, projects_visible_to
from reviews.services.accounts import user_roles_sync

User = get_user_model()


class ProjectListFilter(admin.SimpleListFilter):
    """Filter by project, offering only the projects the user may see.

    Django's ``RelatedOnlyFieldListFilter`` asks the table for its distinct
    projects: a scan of millions of items or deliveries on every list page.
    The admin's ``project_field`` (default ``"project"``) is the lookup.
    """

    title = "project"
    parameter_name = "project"

    def __init__(self, request, params, model, model_admin):
        self.lookup = f"{getattr(model_admin, 'project_field', None) or 'project'}_id"
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        projects = projects_visible_to(request.user).order_by("name")
        return [(str(pk), name) for pk, name in projects.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.lookup: int(value)})


class ProjectScopedAdminMixin:
    """Limit an admin's rows to the user's projects and its writes to projects they run.

    ``project_field`` is the lookup from the row to its Project (``"project"``,
    ``"item__project"``); ``None`` means the rows are projects themselves.
    """

    project_field: str | None = "project"

    def _project_id(self, obj) -> int | None:
        if self.project_field is None:
            return obj.pk
        # "project" or a path such as "item__project": follow it to the project's id.
        *path, last = self.project_field.split("__")
        for name in path:
            obj = getattr(obj, name)
        return getattr(obj, f"{last}_id")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = projects_visible_to(request.user).values("pk")
        if self.project_field is None:
            return queryset.filter(pk__in=visible)
        return queryset.filter(**{f"{self.project_field}__in": visible})

    def get_list_filter(self, request):
        # A plain "project" filter lists every project; offer only the visible ones.
        return [
            ProjectListFilter if name == self.project_field else name
            for name in super().get_list_filter(request)
        ]

    def _administers(self, request, obj) -> bool:
        if request.user.is_superuser or obj is None:
            return True
        return projects_administered_by(request.user).filter(pk=self._project_id(obj)).exists()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._administers(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._administers(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Project and not request.user.is_superuser:
            kwargs["queryset"] = projects_administered_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class UserMembershipInline(admin.TabularInline):
    model = ProjectMembership
    fk_name = "user"
    extra = 1
    fields = ["project", "role", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name = "project membership"
    verbose_name_plural = "Projects and roles"

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("project")
        if request.user.is_superuser:
            return queryset
        # A project admin sees and edits memberships of the projects they run only.
        return queryset.filter(project__in=projects_administered_by(request.user).values("pk"))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project" and not request.user.is_superuser:
            kwargs["queryset"] = projects_administered_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return _manages_accounts(request)

    def has_change_permission(self, request, obj=None):
        return _manages_accounts(request)

    def has_delete_permission(self, request, obj=None):
        return _manages_accounts(request)


def _manages_accounts(request) -> bool:
    return request.user.is_superuser or projects_administered_by(request.user).exists()


class ReviewerUserAdmin(UserAdmin):
    """Users with their project memberships; project admins manage their own reviewers."""

    inlines = [UserMembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_staff"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups", "memberships__project"]
    limited_fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Access", {"fields": ["is_active", "groups", "last_login", "date_joined"]}),
    ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # Members of projects the user runs, plus accounts not yet in any project
        # (just created, or removed from all); never superusers.
        run = projects_administered_by(request.user).values("pk")
        member_elsewhere = ProjectMembership.objects.filter(user=OuterRef("pk"))
        return (
            queryset.filter(is_superuser=False)
            .filter(Q(memberships__project__in=run) | ~Exists(member_elsewhere))
            .distinct()
        )

    def get_fieldsets(self, request, obj=None):
        if obj is None or request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return self.limited_fieldsets

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        # Groups follow roles; they are shown, not edited.
        return ["groups", "last_login", "date_joined"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Accounts are deactivated, not deleted: their reviews stay attributed.
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            # Reviewers work in the admin, so every account made here may log in to it.
            obj.is_staff = True
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user_roles_sync(user=form.instance)
