"""Accounts: users with their project memberships (who manages whom: ``reviews.access``)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from reviews.access import Capability, may_anywhere, projects_where, users_managed_by
from reviews.access.admin import ManagedMembershipsMixin, ProjectListFilter
from reviews.models import ProjectMembership
from reviews.services.accounts import user_roles_sync


class UserMembershipInline(ManagedMembershipsMixin, admin.TabularInline):
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
        managed = projects_where(request.user, Capability.MANAGE_MEMBERS).values("pk")
        return queryset.filter(project__in=managed)

    def has_view_permission(self, request, obj=None):
        return True


class UserProjectFilter(ProjectListFilter):
    title = "project"
    parameter_name = "project"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.lookup = "memberships__project_id"
        self.capability = Capability.MANAGE_MEMBERS


class ReviewerUserAdmin(UserAdmin):
    """Accounts with their project memberships.

    Superusers manage everyone. A project admin manages the accounts whose every
    membership is in projects they administer (``users_managed_by``): they never
    see or change superusers, staff flags, passwords or roles of anyone else.
    """

    inlines = [UserMembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_staff"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups", UserProjectFilter]
    limited_fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Access", {"fields": ["is_active", "groups", "last_login", "date_joined"]}),
    ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=users_managed_by(request.user).values("pk"))

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return self.list_filter
        return ["is_active", UserProjectFilter]

    def get_fieldsets(self, request, obj=None):
        if obj is None or request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return self.limited_fieldsets

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        # Groups follow roles; they are shown, not edited.
        return ["groups", "last_login", "date_joined"]

    def _manages(self, request, obj) -> bool:
        if request.user.is_superuser:
            return True
        if not may_anywhere(request.user, Capability.MANAGE_MEMBERS):
            return False
        return obj is None or users_managed_by(request.user).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return super().has_module_permission(request) and self._manages(request, None)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._manages(request, obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self._manages(request, None)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._manages(request, obj)

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
