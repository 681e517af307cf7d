"""Operations pages: django-rq's dashboard, for superusers only."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import URLPattern
from django_rq.admin import QueueAdmin
from rq.exceptions import NoSuchJobError

from reviews.access import is_operator


def _operators_only(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "admin:login")
        if not is_operator(request.user):
            raise PermissionDenied
        try:
            return view(request, *args, **kwargs)
        except NoSuchJobError as exc:
            raise Http404("No such job.") from exc
        except ValueError as exc:
            # django-rq parses worker keys and job ids from the URL and raises on bad ones.
            raise Http404(str(exc)) from exc

    return wrapped


# rq-scheduler is not used (RQ's own scheduler is): its page would only raise.
RQ_PAGES_LEFT_OUT = {"django_rq_scheduler_jobs"}


class OperatorQueueAdmin(QueueAdmin):
    """django-rq's dashboard (empty, requeue, delete jobs): superusers only.

    django-rq itself asks only ``is_staff``, and every reviewer is staff.
    """

    def get_urls(self):
        # django-rq's own pages and the dashboard's index; the model's add, change,
        # delete and history pages have no rows behind them and are left out.
        return [
            URLPattern(p.pattern, _operators_only(p.callback), p.default_args, p.name)
            for p in super().get_urls()
            if p.name
            and p.name.startswith("django_rq_")
            and p.name not in RQ_PAGES_LEFT_OUT
            and (
                not p.name.startswith("django_rq_dashboard_")
                or p.name == "django_rq_dashboard_changelist"
            )
        ]

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None):
        return is_operator(request.user)
