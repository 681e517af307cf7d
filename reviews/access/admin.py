"""The admin's side of authorization: every admin page asks ``reviews.access``.

Django's group permissions (``reviews.roles``) decide which models' pages a
role may open at all; which rows, and whether a given row may be seen or
changed, is decided from the user's role in that row's project. History is
an audit trail: its pages are scoped like the object they belong to (an
item's, to its project's admins: reviewers and seniors read the timeline,
which keeps blind review and controls blind), and nobody reverts a row from
them. Operations pages (the RQ dashboard) are for
superusers only. Project admins manage only accounts that belong solely to
projects they administer.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed
from simple_history.admin import SimpleHistoryAdmin

from reviews.access import (
    Capability,
    may,
    may_anywhere,
    projects_where,
    users_managed_by,
)

User = get_user_model()


class ProjectListFilter(admin.SimpleListFilter):
    """Filter by project, offering only the projects whose rows the user may see.

    Django's ``RelatedOnlyFieldListFilter`` asks the table for its distinct
    projects: a scan of millions of items or deliveries on every list page.
    The admin's ``project_field`` (default ``"project"``) is the lookup and its
    ``view_capability`` (default: viewing items) decides which projects are offered.
    """

    title = "project"
    parameter_name = "project"

    def __init__(self, request, params, model, model_admin):
        self.lookup = f"{getattr(model_admin, 'project_field', None) or 'project'}_id"
        self.capability = getattr(model_admin, "view_capability", Capability.VIEW)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        projects = projects_where(request.user, self.capability).order_by("name")
        return [(str(pk), name) for pk, name in projects.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.lookup: int(value)})


class ProjectScopedAdminMixin:
    """Rows, pages and writes of a project-bound admin, decided by the role in the row's project.

    ``project_field`` is the lookup from the row to its Project (``"project"``,
    ``"item__project"``); ``None`` means the rows are projects themselves.
    ``view_capability`` is what seeing a row needs, ``change_capability`` what
    changing, adding or deleting one needs (``None``: read-only for everyone).
    Django's model permissions still have to allow the action too.
    """

    project_field: str | None = "project"
    view_capability: Capability = Capability.VIEW
    change_capability: Capability | None = Capability.ADMINISTER

    def project_id_of(self, obj) -> int | None:
        if self.project_field is None:
            return obj.pk
        # "project" or a path such as "item__project": follow it to the project's id.
        *path, last = self.project_field.split("__")
        for name in path:
            obj = getattr(obj, name)
        return getattr(obj, f"{last}_id")

    def _allowed(self, request, capability: Capability | None, obj) -> bool:
        if capability is None:
            return False
        if obj is None:
            return may_anywhere(request.user, capability)
        return may(request.user, capability, self.project_id_of(obj))

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        scope = projects_where(request.user, self.view_capability).values("pk")
        if self.project_field is None:
            return queryset.filter(pk__in=scope)
        return queryset.filter(**{f"{self.project_field}__in": scope})

    def get_list_filter(self, request):
        # A plain "project" filter lists every project; offer only the visible ones.
        return [
            ProjectListFilter if name == self.project_field else name
            for name in super().get_list_filter(request)
        ]

    def has_module_permission(self, request):
        return super().has_module_permission(request) and may_anywhere(
            request.user, self.view_capability
        )

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and (
            self._allowed(request, self.view_capability, obj)
            or self._allowed(request, self.change_capability, obj)
        )

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and self._allowed(
            request, self.change_capability, None
        )

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._allowed(
            request, self.change_capability, obj
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._allowed(
            request, self.change_capability, obj
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        from_project = db_field.related_model._meta.label == "reviews.Project"
        if from_project and not request.user.is_superuser:
            kwargs["queryset"] = projects_where(
                request.user, self.change_capability or self.view_capability
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin):
    """simple-history's pages as a read-only audit trail, scoped like the object.

    simple-history's "revert" form saves a historical row on POST, bypassing
    the services and the state machine: it is refused here for everyone,
    superusers included. Its history list and detail pages answer only to a
    user who may view the object itself (``has_view_permission(request, obj)``)
    and, when ``history_capability`` is set, holds it in the object's project.
    """

    history_capability: Capability | None = None

    def _may_read_history(self, request, obj) -> bool:
        if not self.has_view_permission(request, obj):
            return False
        capability = self.history_capability
        return capability is None or may(request.user, capability, self.project_id_of(obj))

    def _object_id_or_404(self, object_id: str):
        try:
            return self.model._meta.pk.to_python(object_id)
        except ValidationError as exc:
            raise Http404("No such object.") from exc

    def history_view(self, request, object_id, extra_context=None):
        object_id = self._object_id_or_404(object_id)
        obj = self.get_queryset(request).filter(pk=object_id).first()
        if obj is None:
            # Outside the user's scope, or gone: simple-history would rebuild it
            # from its latest history row; only a viewer of that row may see it.
            rows = self.model.history.filter(**{self.model._meta.pk.attname: object_id})
            latest = rows.order_by("-history_date").first()
            if latest is None:
                raise Http404("No such object.")
            obj = latest.instance
        if not self._may_read_history(request, obj):
            raise PermissionDenied
        return super().history_view(request, str(object_id), extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        object_id = self._object_id_or_404(object_id)
        history_model = self.model.history.model
        try:
            version_id = history_model._meta.pk.to_python(version_id)
        except ValidationError as exc:
            raise Http404("No such version.") from exc
        lookup = {"pk": version_id, self.model._meta.pk.attname: object_id}
        row = history_model.objects.filter(**lookup).first()
        if row is None:
            raise Http404("No such version.")
        if not self._may_read_history(request, row.instance):
            raise PermissionDenied
        return super().history_form_view(request, str(object_id), str(version_id), extra_context)

    def revert_disabled(self, request, obj=None):
        return True

    def has_change_history_permission(self, request, obj=None):
        return False


# --- Accounts ------------------------------------------------------------------------


class MembershipFormSet(forms.BaseInlineFormSet):
    """Memberships a project admin adds, changes or removes: only of accounts they manage.

    ``managed`` (set by the admin) holds the ids of users the request's user
    may manage; a row about anyone else may be shown but not changed.
    """

    managed: set[int] | None = None  # None: a superuser, who manages everyone

    def clean(self):
        super().clean()
        if self.managed is None:
            return
        for form in self.forms:
            if not form.has_changed() and not self._should_delete_form(form):
                continue
            user = form.cleaned_data.get("user") if form.is_valid() else None
            user = user or getattr(form.instance, "user", None)
            # An account being created on this very page is its creator's to manage.
            if user is not None and user.pk is not None and user.pk not in self.managed:
                raise ValidationError(
                    f"You cannot change the roles of {user.get_username()}: "
                    "they also belong to projects you do not administer."
                )


class ManagedMembershipsMixin:
    """For membership inlines: writes only by managers, only on accounts they manage."""

    formset = MembershipFormSet

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.managed = (
            None
            if request.user.is_superuser
            else set(users_managed_by(request.user).values_list("pk", flat=True))
        )
        return formset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # The user field keeps every account as a choice, so that existing rows of
        # people the admin may not manage still validate; ``MembershipFormSet``
        # refuses any change to them, and the autocomplete offers managed users only.
        if db_field.name == "project" and not request.user.is_superuser:
            kwargs["queryset"] = projects_where(request.user, Capability.MANAGE_MEMBERS)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _manages(self, request) -> bool:
        return may_anywhere(request.user, Capability.MANAGE_MEMBERS)

    def has_add_permission(self, request, obj=None):
        return self._manages(request)

    def has_change_permission(self, request, obj=None):
        return self._manages(request)

    def has_delete_permission(self, request, obj=None):
        return self._manages(request)
