"""The permission matrix: every admin and API URL, every kind of caller, objects in A and B.

The URL patterns come from the resolver, so a view added without an entry
here fails ``test_every_url_pattern_is_in_the_matrix``: no page can be added
unguarded. Each pattern's rule says who may use it, written from the roles
(not from ``reviews.access``, which is what is being checked). Every request
runs in a savepoint that is rolled back, so each starts from the same world;
a refused request must not write a single row.

Callers: anonymous, a reviewer of A, a senior of A, an admin of A, a reviewer
of B who is admin of A, an inactive admin of A, a superuser, A's API key and a
revoked key of A. Objects: one of each kind in A and in B.
"""

import copy
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client, TestCase, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from adjudication.models import AdjudicationCase
from adjudication.services import reviews_settle
from datasets.models import DatasetExportItem
from datasets.services import export_create
from datasets.services.build import export_build
from reviews.imports.services import import_upload
from reviews.judge.services import judge_config_save
from reviews.models import (
    DriftAlert,
    ItemImport,
    ItemStatus,
    JudgeConfig,
    JudgeVerdict,
    Review,
    ReviewItem,
    WebhookDelivery,
)
from reviews.quality.controls import KnownAnswer, control_create
from reviews.quality.quarantine import quarantine_create
from reviews.services.projects import api_key_create, api_key_revoke
from reviews.services.transitions import item_transition
from reviews.workspace.services import assignment_claim_next
from tests import factories
from tests.datasets.factories import reviewed
from tests.otlp import traces

SIDES = ("A", "B")
# Callers with no valid session (the admin) or no valid credentials (the API).
NO_SESSION = {"anonymous", "inactive", "key_a", "revoked"}
NO_CREDENTIALS = {"anonymous", "inactive", "revoked"}
EXPORT_DIR = tempfile.mkdtemp(prefix="hitl-matrix-")
IMPORT_DIR = tempfile.mkdtemp(prefix="hitl-matrix-imports-")
STORAGES = {
    **settings.STORAGES,
    "imports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": IMPORT_DIR},
    },
}
USERS = ("reviewer_a", "senior_a", "admin_a", "mixed", "inactive", "superuser")
PRINCIPALS = ("anonymous", *USERS, "key_a", "revoked")

# The specification: roles per caller and what each role may do.
ROLES = {
    "reviewer_a": {"A": "reviewer"},
    "senior_a": {"A": "senior"},
    "admin_a": {"A": "admin"},
    "mixed": {"A": "admin", "B": "reviewer"},
}
VIEW, REVIEW, ADJUDICATE, AGREEMENT = "view", "review", "adjudicate", "agreement"
DOWNLOAD, BUILD, SUBMIT, ADMINISTER = "download", "build", "submit", "administer"
ROLE_MAY = {
    "reviewer": {VIEW, REVIEW},
    "senior": {VIEW, REVIEW, ADJUDICATE, AGREEMENT, DOWNLOAD},
    "admin": {VIEW, REVIEW, ADJUDICATE, AGREEMENT, DOWNLOAD, BUILD, SUBMIT, ADMINISTER},
}
KEY_MAY = {VIEW, SUBMIT, AGREEMENT, DOWNLOAD, BUILD}


def holds(principal: str, capability: str, side: str | None) -> bool:
    if principal == "superuser":
        return True
    if principal == "key_a":
        return capability in KEY_MAY and side in ("A", None)
    roles = ROLES.get(principal, {})
    sides = SIDES if side is None else (side,)
    return any(capability in ROLE_MAY.get(roles.get(s, ""), set()) for s in sides)


Rule = Callable[[str, str | None], bool]


def cap(capability: str) -> Rule:
    """Allowed where the caller holds ``capability`` in the object's project."""
    return lambda p, side: holds(p, capability, side)


def anywhere(capability: str) -> Rule:
    """Allowed when the caller holds ``capability`` in any project (list pages)."""
    return lambda p, side: holds(p, capability, None)


def staff(p: str, side) -> bool:
    return p in USERS and p != "inactive"


def superuser(p: str, side) -> bool:
    return p == "superuser"


def nobody(p: str, side) -> bool:
    return False


def everyone(p: str, side) -> bool:
    return True


def credentials_valid(p: str, side) -> bool:
    """Public pages: anyone, except that a revoked key is an error (401) wherever it is sent."""
    return p != "revoked"


def project_key(p: str, side) -> bool:
    """Only a project's API key: people submit through the items API."""
    return p == "key_a"


def otlp_chat(w, side) -> dict:
    """An OTLP JSON export holding one chat span, as the SDK records it."""
    return traces.otlp_json(traces.export_request(traces.recorded(traces.semconv_chat)))


def claim_owner(p: str, side) -> bool:
    """A claim is its reviewer's alone: A's claim is reviewer_a's (B's is someone else's)."""
    return p == "reviewer_a" and side == "A"


def manages_account(p: str, side) -> bool:
    """Side A's account belongs to A only; side B's also to B (only superusers manage it)."""
    return p == "superuser" or (side == "A" and p in ("admin_a", "mixed"))


def manages_anyone(p: str, side) -> bool:
    return p in ("superuser", "admin_a", "mixed")


@dataclass
class Route:
    url: Callable  # (world, side) -> str
    get: Rule
    post: Rule
    sided: bool = True
    post_data: Callable | None = None  # (world, side) -> dict
    api: bool = False
    # What an allowed caller gets; default: 200 for GET, any non-refusal for POST.
    allowed_get: frozenset = frozenset({200})
    allowed_post: frozenset = frozenset({200, 201, 202, 302, 400})
    # Django's admin answers a row outside the user's scope like a missing one: a
    # redirect to the index with "doesn't exist"; nothing of the row is shown.
    refused: frozenset = frozenset({302, 403, 404, 405})
    login_required: bool = True  # callers without a session or key are turned away first


REFUSED_API_POST = frozenset({400, 403, 404, 405})


@dataclass
class World:
    ids: dict = field(default_factory=dict)

    def __getitem__(self, key):
        return self.ids[key]


# --- Model admin pages: derived from the registry, rules from this table ---------------

# (app, model): (list rule, view rule, change rule, add rule, delete rule, world key of the object)
MODEL_RULES: dict[tuple[str, str], tuple] = {
    ("reviews", "project"): (
        anywhere(VIEW),
        cap(VIEW),
        cap(ADMINISTER),
        superuser,
        superuser,
        "project",
    ),
    ("reviews", "apikey"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        cap(ADMINISTER),
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        "apikey",
    ),
    ("reviews", "reviewitem"): (anywhere(VIEW), cap(VIEW), nobody, nobody, nobody, "item"),
    ("reviews", "judgeconfig"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        cap(ADMINISTER),
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        "judgeconfig",
    ),
    ("reviews", "judgeverdict"): (anywhere(VIEW), cap(VIEW), nobody, nobody, nobody, "verdict"),
    # File imports: a project's admins only; they change through their services, never deleted.
    ("reviews", "itemimport"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        nobody,
        anywhere(ADMINISTER),
        nobody,
        "itemimport",
    ),
    ("reviews", "driftalert"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        nobody,
        nobody,
        nobody,
        "alert",
    ),
    ("reviews", "webhookdelivery"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        nobody,
        nobody,
        nobody,
        "delivery",
    ),
    # Controls and quarantines: which items are controls, and who was quarantined, are
    # for a project's admins only. Controls are never deleted; quarantines never edited.
    ("reviews", "controlanswer"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        cap(ADMINISTER),
        anywhere(ADMINISTER),
        nobody,
        "control",
    ),
    ("reviews", "quarantine"): (
        anywhere(ADMINISTER),
        cap(ADMINISTER),
        nobody,
        nobody,
        nobody,
        "quarantine",
    ),
    ("adjudication", "adjudicationcase"): (
        anywhere(ADJUDICATE),
        cap(ADJUDICATE),
        nobody,
        nobody,
        nobody,
        "case",
    ),
    ("datasets", "datasetexport"): (
        anywhere(DOWNLOAD),
        cap(DOWNLOAD),
        nobody,
        anywhere(BUILD),
        cap(BUILD),
        "export",
    ),
    ("datasets", "datasetexportitem"): (
        anywhere(DOWNLOAD),
        cap(DOWNLOAD),
        nobody,
        nobody,
        nobody,
        "export_item",
    ),
    ("auth", "user"): (
        manages_anyone,
        manages_account,
        manages_account,
        manages_anyone,
        superuser,
        "account",
    ),
    ("auth", "group"): (superuser, superuser, superuser, superuser, superuser, "group"),
    # django-axes' login attempt logs: superusers only.
    ("axes", "accessattempt"): (superuser, superuser, superuser, nobody, superuser, "attempt"),
    ("axes", "accesslog"): (superuser, superuser, superuser, nobody, superuser, "accesslog"),
    ("axes", "accessfailurelog"): (
        superuser,
        superuser,
        superuser,
        nobody,
        superuser,
        "failurelog",
    ),
}
APP_INDEX = "admin/^(?P<app_label>"


def model_routes() -> dict[str, Route]:
    routes = {}
    for model, model_admin in admin.site._registry.items():
        app, name = model._meta.app_label, model._meta.model_name
        if (app, name) not in MODEL_RULES:
            continue  # django-rq's dashboard and the monitoring dashboard: custom routes below
        list_rule, view_rule, change_rule, add_rule, delete_rule, key = MODEL_RULES[(app, name)]
        base = f"admin/{app}/{name}/"

        def obj_url(suffix, key=key, base=base):
            return lambda w, side: f"/{base}{w[f'{key}_{side}']}/{suffix}"

        routes[base] = Route(lambda w, side, b=base: f"/{b}", list_rule, list_rule, sided=False)
        routes[f"{base}add/"] = Route(
            lambda w, side, b=base: f"/{b}add/", add_rule, add_rule, sided=False
        )
        routes[f"{base}<path:object_id>/history/"] = Route(
            obj_url("history/"), view_rule, view_rule
        )
        routes[f"{base}<path:object_id>/delete/"] = Route(
            obj_url("delete/"), delete_rule, delete_rule, post_data=lambda w, side: {"post": "yes"}
        )
        routes[f"{base}<path:object_id>/change/"] = Route(
            obj_url("change/"), view_rule, change_rule
        )
        # Django's redirect from the bare object URL to its change page: no data in it.
        routes[f"{base}<path:object_id>/"] = Route(
            obj_url(""), staff, staff, allowed_get=frozenset({302}), allowed_post=frozenset({302})
        )
        if isinstance(model_admin, SimpleHistoryAdmin):
            routes[f"{base}^([^/]+)/history/([^/]+)/$"] = Route(
                lambda w, side, key=key, b=base: (
                    f"/{b}{w[f'{key}_{side}']}/history/{w[f'{key}_history_{side}']}/"
                ),
                view_rule,
                nobody,  # history is read-only: no revert, for anyone
            )
    return routes


RQ = "admin/django_rq/dashboard/"


def rq_route(path: str) -> Route:
    """django-rq's operations pages: superusers only. Fake job ids may answer 404 to them."""
    url = "/" + RQ
    url += (
        path.replace("<int:queue_index>", "0")
        .replace("<int:scheduler_index>", "0")
        .replace("<int:connection_index>", "0")
        .replace("<str:job_id>", "no-such-job")
        .replace("<str:result_id>", "no-such-result")
        .replace("<str:key>", "no-such-worker")
        .replace("<str:scheduler_name>", "no-such-scheduler")
        .replace("<path:cron_job_name>", "no-such-cron")
        .replace("^stats.json/(?P<token>[\\w]+)?/?$", "stats.json/")
        .replace("^stats.json/?$", "stats.json")
    )
    return Route(
        lambda w, side, u=url: u,
        superuser,
        superuser,
        sided=False,
        allowed_get=frozenset({200, 302, 404, 405}),
        allowed_post=frozenset({200, 302, 400, 404, 405}),
    )


def custom_routes() -> dict[str, Route]:
    item = "admin/reviews/reviewitem/"
    case = "admin/adjudication/adjudicationcase/"
    export = "admin/datasets/datasetexport/"
    dashboard = "admin/reviews/monitoringdashboard/"
    quarantine = "admin/reviews/quarantine/"
    api = "api/v1/"
    return {
        # The admin site itself.
        "admin/": Route(lambda w, s: "/admin/", staff, staff, sided=False),
        "admin/login/": Route(
            lambda w, s: "/admin/login/",
            everyone,
            everyone,
            sided=False,
            allowed_get=frozenset({200, 302}),
            login_required=False,
        ),
        "admin/logout/": Route(lambda w, s: "/admin/logout/", nobody, staff, sided=False),
        "admin/password_change/": Route(
            lambda w, s: "/admin/password_change/", staff, staff, sided=False
        ),
        "admin/password_change/done/": Route(
            lambda w, s: "/admin/password_change/done/", staff, nobody, sided=False
        ),
        "admin/autocomplete/": Route(lambda w, s: "/admin/autocomplete/", nobody, nobody, False),
        "admin/jsi18n/": Route(lambda w, s: "/admin/jsi18n/", staff, nobody, sided=False),
        "admin/r/<path:content_type_id>/<path:object_id>/": Route(
            lambda w, s: f"/admin/r/{w['item_ct']}/{w[f'item_{s}']}/", nobody, nobody
        ),
        "admin/(?P<url>.*)$": Route(lambda w, s: "/admin/no-such-page/", nobody, nobody, False),
        # The reviewer workspace.
        f"{item}workspace/": Route(lambda w, s: f"/{item}workspace/", staff, nobody, sided=False),
        f"{item}workspace/claim/<int:project_id>/": Route(
            lambda w, s: f"/{item}workspace/claim/{w[f'project_{s}']}/", nobody, cap(REVIEW)
        ),
        f"{item}workspace/review/<int:assignment_id>/": Route(
            lambda w, s: f"/{item}workspace/review/{w[f'assignment_{s}']}/",
            claim_owner,
            claim_owner,
        ),
        f"{item}workspace/review/<int:assignment_id>/steps/": Route(
            lambda w, s: f"/{item}workspace/review/{w[f'assignment_{s}']}/steps/",
            nobody,
            claim_owner,
            post_data=lambda w, s: {
                "step_action": "mark",
                "step_index": "2",
                "step_reason": "factual_error",
                "step_severity": "major",
            },
        ),
        # Undo of a decision: its author only (the world's review has no claim to restore,
        # so the author's undo is refused with a redirect; others get a 404).
        f"{item}workspace/undo/<int:review_id>/": Route(
            lambda w, s: f"/{item}workspace/undo/{w[f'undo_review_{s}']}/",
            nobody,
            claim_owner,
        ),
        # File imports: mapping a draft, the progress endpoint, the error report.
        "admin/reviews/itemimport/<int:pk>/map/": Route(
            lambda w, s: f"/admin/reviews/itemimport/{w[f'draft_import_{s}']}/map/",
            cap(ADMINISTER),
            cap(ADMINISTER),
        ),
        "admin/reviews/itemimport/<int:pk>/progress/": Route(
            lambda w, s: f"/admin/reviews/itemimport/{w[f'itemimport_{s}']}/progress/",
            cap(ADMINISTER),
            nobody,
        ),
        "admin/reviews/itemimport/<int:pk>/errors.csv": Route(
            lambda w, s: f"/admin/reviews/itemimport/{w[f'itemimport_{s}']}/errors.csv",
            cap(ADMINISTER),
            nobody,
        ),
        f"{item}<int:item_id>/timeline/": Route(
            lambda w, s: f"/{item}{w[f'item_{s}']}/timeline/", cap(VIEW), nobody
        ),
        # The judge's calibration report.
        "admin/reviews/judgeconfig/calibration/": Route(
            lambda w, s: "/admin/reviews/judgeconfig/calibration/",
            anywhere(ADMINISTER),
            anywhere(ADMINISTER),
            sided=False,
        ),
        # Monitoring.
        dashboard: Route(lambda w, s: f"/{dashboard}", anywhere(VIEW), anywhere(VIEW), sided=False),
        f"{dashboard}apply-advice/": Route(
            lambda w, s: f"/{dashboard}apply-advice/",
            nobody,
            cap(ADMINISTER),
            post_data=lambda w, s: {"project": w[f"project_{s}"], "to_mode": "monitor"},
        ),
        f"{dashboard}alerts/<int:pk>/resolve/": Route(
            lambda w, s: f"/{dashboard}alerts/{w[f'alert_{s}']}/resolve/", nobody, cap(ADMINISTER)
        ),
        "admin/reviews/webhookdelivery/<uuid:pk>/resend/": Route(
            lambda w, s: f"/admin/reviews/webhookdelivery/{w[f'delivery_{s}']}/resend/",
            nobody,
            cap(ADMINISTER),
        ),
        # Reviewer quality: the reviewer pages and the quarantine form (project admins).
        f"{quarantine}reviewers/": Route(
            lambda w, s: f"/{quarantine}reviewers/", anywhere(ADMINISTER), nobody, sided=False
        ),
        f"{quarantine}reviewers/<int:project_id>/<int:user_id>/": Route(
            lambda w, s: (
                f"/{quarantine}reviewers/{w[f'project_{s}']}/{w[f'quality_reviewer_{s}']}/"
            ),
            cap(ADMINISTER),
            nobody,
        ),
        f"{quarantine}reviewers/<int:project_id>/<int:user_id>/quarantine/": Route(
            lambda w, s: (
                f"/{quarantine}reviewers/{w[f'project_{s}']}/{w[f'quality_reviewer_{s}']}/quarantine/"
            ),
            nobody,
            cap(ADMINISTER),
            post_data=lambda w, s: {"start": "2026-01-01", "end": "2026-01-02", "reason": "test"},
        ),
        # Adjudication.
        f"{case}queue/": Route(
            lambda w, s: f"/{case}queue/", anywhere(ADJUDICATE), anywhere(ADJUDICATE), False
        ),
        f"{case}claim-next/": Route(
            lambda w, s: f"/{case}claim-next/",
            anywhere(ADJUDICATE),
            anywhere(ADJUDICATE),
            sided=False,
            post_data=lambda w, s: {"project": w[f"slug_{s}"]},
            allowed_get=frozenset({302}),
            allowed_post=frozenset({302}),
        ),
        f"{case}<int:case_id>/work/": Route(
            lambda w, s: f"/{case}{w[f'case_{s}']}/work/", cap(ADJUDICATE), cap(ADJUDICATE)
        ),
        f"{case}reopen/": Route(
            lambda w, s: f"/{case}reopen/", anywhere(ADJUDICATE), anywhere(ADJUDICATE), False
        ),
        f"{case}reopen/<int:item_id>/": Route(
            lambda w, s: f"/{case}reopen/{w[f'final_item_{s}']}/", cap(ADJUDICATE), cap(ADJUDICATE)
        ),
        f"{case}agreement/": Route(
            lambda w, s: f"/{case}agreement/", anywhere(AGREEMENT), anywhere(AGREEMENT), False
        ),
        # Dataset exports in the admin.
        f"{export}<int:pk>/progress/": Route(
            lambda w, s: f"/{export}{w[f'export_{s}']}/progress/", cap(DOWNLOAD), nobody
        ),
        f"{export}<int:pk>/download/<str:split>/": Route(
            lambda w, s: f"/{export}{w[f'export_{s}']}/download/train/", cap(DOWNLOAD), nobody
        ),
        f"{export}<int:pk>/manifest/": Route(
            lambda w, s: f"/{export}{w[f'export_{s}']}/manifest/", cap(DOWNLOAD), nobody
        ),
        "admin/auth/user/<id>/password/": Route(
            lambda w, s: f"/admin/auth/user/{w[f'account_{s}']}/password/",
            manages_account,
            manages_account,
        ),
        f"{export}<int:pk>/retry/": Route(
            lambda w, s: f"/{export}{w[f'export_{s}']}/retry/", nobody, cap(BUILD)
        ),
        # The API.
        f"{api}projects/<slug:slug>/agreement/": Route(
            lambda w, s: f"/{api}projects/{w[f'slug_{s}']}/agreement/",
            cap(AGREEMENT),
            nobody,
            api=True,
        ),
        f"{api}^items/$": Route(
            lambda w, s: f"/{api}items/",
            anywhere(VIEW),
            cap(SUBMIT),
            api=True,
            sided=True,
            post_data=lambda w, s: factories.item_payload(project=w[f"slug_{s}"]),
            refused=REFUSED_API_POST,
        ),
        f"{api}^items/(?P<pk>[^/.]+)/$": Route(
            lambda w, s: f"/{api}items/{w[f'item_{s}']}/", cap(VIEW), nobody, api=True
        ),
        # OTLP trace intake: the API key's project only; no project in the URL.
        f"{api}otlp/v1/traces": Route(
            lambda w, s: f"/{api}otlp/v1/traces",
            nobody,
            project_key,
            sided=False,
            api=True,
            post_data=otlp_chat,
            allowed_post=frozenset({200}),
            refused=frozenset({403, 405}),
        ),
        f"{api}^exports/$": Route(
            lambda w, s: f"/{api}exports/",
            anywhere(DOWNLOAD),
            cap(BUILD),
            api=True,
            post_data=lambda w, s: {"format": "sft_chat", "projects": [w[f"slug_{s}"]]},
            refused=REFUSED_API_POST,
        ),
        f"{api}^exports/(?P<pk>[^/.]+)/$": Route(
            lambda w, s: f"/{api}exports/{w[f'export_{s}']}/", cap(DOWNLOAD), nobody, api=True
        ),
        f"{api}^exports/(?P<pk>[^/.]+)/download/$": Route(
            lambda w, s: f"/{api}exports/{w[f'export_{s}']}/download/?split=train",
            cap(DOWNLOAD),
            nobody,
            api=True,
        ),
        f"{api}^exports/(?P<pk>[^/.]+)/manifest/$": Route(
            lambda w, s: f"/{api}exports/{w[f'export_{s}']}/manifest/",
            cap(DOWNLOAD),
            nobody,
            api=True,
        ),
        # Operations: probes for load balancers (no credentials, nothing disclosed) and
        # the metrics, which answer only the bearer token (HITL_METRICS_TOKEN), never a
        # session or an API key.
        "healthz": Route(
            lambda w, s: "/healthz",
            everyone,
            nobody,
            False,
            refused=frozenset({405}),
            login_required=False,
        ),
        "readyz": Route(
            lambda w, s: "/readyz",
            everyone,
            nobody,
            False,
            refused=frozenset({405}),
            login_required=False,
        ),
        "metrics": Route(
            lambda w, s: "/metrics",
            nobody,
            nobody,
            False,
            refused=frozenset({401, 405}),
            login_required=False,
        ),
        # The published API description is public.
        "api/schema/": Route(
            lambda w, s: "/api/schema/",
            credentials_valid,
            nobody,
            False,
            api=True,
            refused=frozenset({401, 405}),
            login_required=False,
        ),
        "api/docs/": Route(
            lambda w, s: "/api/docs/",
            credentials_valid,
            nobody,
            False,
            api=True,
            refused=frozenset({401, 405}),
            login_required=False,
        ),
    }


def all_routes() -> dict[str, Route]:
    routes = {**model_routes(), **custom_routes()}
    for route in resolver_routes():
        if route.startswith(RQ):
            routes[route] = rq_route(route[len(RQ) :])
        elif route.startswith(APP_INDEX):
            # An app's index page (the pattern lists every app that has an admin).
            routes[route] = Route(
                lambda w, s: "/admin/reviews/", anywhere(VIEW), anywhere(VIEW), sided=False
            )
    return routes


def resolver_routes() -> list[str]:
    """Every URL pattern of the site, as its full route string."""

    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return sorted(set(walk(get_resolver())))


# --- The world ---------------------------------------------------------------------


def _writes() -> dict[str, int]:
    """Rows inserted, updated or deleted so far in this transaction, per table.

    PostgreSQL counts them per transaction (``pg_stat_xact_user_tables``), so
    comparing two readings around a request tells whether it wrote anything at
    all: stricter than comparing contents, and cheap enough for every cell.
    Sessions and login-attempt logs aside.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname <> 'django_session' AND relname NOT LIKE 'axes%%' "
            "AND n_tup_ins + n_tup_upd + n_tup_del > 0"
        )
        return dict(cursor.fetchall())


class _Rollback(Exception):
    pass


@override_settings(
    HITL_EXPORT_DIR=EXPORT_DIR, HITL_METRICS_TOKEN="matrix-metrics-token", STORAGES=STORAGES
)
class PermissionMatrixTests(TestCase):
    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(EXPORT_DIR, ignore_errors=True)
        shutil.rmtree(IMPORT_DIR, ignore_errors=True)

    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        w = World()
        users = {}
        for name in ("reviewer_a", "second_a", "senior_a", "admin_a", "mixed", "inactive"):
            users[name] = User.objects.create_user(name, password="x-pass-1234", is_staff=True)
        for name in ("reviewer_b", "second_b", "senior_b", "shared"):
            users[name] = User.objects.create_user(name, password="x-pass-1234", is_staff=True)
        users["superuser"] = User.objects.create_superuser("root", "r@example.com", "x-pass-1234")
        projects = {}
        for side in SIDES:
            projects[side] = factories.make_project(
                name=f"Project {side}",
                slug=f"project-{side.lower()}",
                reviews_required=2,
                webhook_url=f"https://hooks-{side.lower()}.example.com/hitl",
            )
        a, b = projects["A"], projects["B"]
        for name, project, role in [
            ("reviewer_a", a, "reviewer"),
            ("second_a", a, "reviewer"),
            ("senior_a", a, "senior"),
            ("admin_a", a, "admin"),
            ("mixed", a, "admin"),
            ("mixed", b, "reviewer"),
            ("inactive", a, "admin"),
            ("reviewer_b", b, "reviewer"),
            ("second_b", b, "reviewer"),
            ("senior_b", b, "senior"),
            ("shared", a, "reviewer"),
            ("shared", b, "senior"),
        ]:
            factories.add_member(project, users[name], role)
        users["inactive"].is_active = False
        users["inactive"].save(update_fields=["is_active"])

        for side, project in projects.items():
            first, second = (
                (users["reviewer_a"], users["second_a"])
                if side == "A"
                else (users["reviewer_b"], users["second_b"])
            )
            w.ids[f"project_{side}"] = project.pk
            w.ids[f"slug_{side}"] = project.slug
            w.ids[f"project_history_{side}"] = project.history.latest().history_id
            # An item in review, claimed by the side's first reviewer.
            (item,) = factories.ingest(project)
            assignment = assignment_claim_next(reviewer=first, project=project)
            assert assignment.item_id == item.pk
            w.ids[f"item_{side}"] = item.pk
            w.ids[f"item_history_{side}"] = item.history.latest().history_id
            w.ids[f"assignment_{side}"] = assignment.pk
            # Two blind reviews that disagree: an open adjudication case.
            (disputed,) = factories.ingest(project)
            with transaction.atomic():
                disputed = ReviewItem.objects.select_for_update().get(pk=disputed.pk)
                item_transition(item=disputed, to_status=ItemStatus.IN_REVIEW, reason="claimed")
                reviews = [
                    Review.objects.create(item=disputed, reviewer=first, verdict="approve"),
                    Review.objects.create(
                        item=disputed,
                        reviewer=second,
                        verdict="reject",
                        reason_code="factual_error",
                        severity="major",
                    ),
                ]
                reviews_settle(item=disputed, reviews=reviews, user=second)
            case = AdjudicationCase.objects.get(item=disputed)
            w.ids[f"case_{side}"] = case.pk
            w.ids[f"case_history_{side}"] = case.history.latest().history_id
            # A final item, a webhook delivery for it, and a built export of it.
            final = reviewed(project, reviewer=first)
            w.ids[f"final_item_{side}"] = final.pk
            # A decision of the side's first reviewer, for the undo URL.
            undoable = reviewed(project, reviewer=first)
            w.ids[f"undo_review_{side}"] = Review.objects.get(item=undoable).pk
            # The project has a webhook: becoming final wrote the delivery row.
            delivery = WebhookDelivery.objects.get(item=final)
            w.ids[f"delivery_{side}"] = delivery.pk
            export = export_create(
                format="sft_chat", projects=[project], filters={}, name=side, enqueue=False
            )
            export = export_build(export_id=export.pk)
            assert export.is_built, export.error
            w.ids[f"export_{side}"] = export.pk
            w.ids[f"export_item_{side}"] = DatasetExportItem.objects.filter(export=export)[0].pk
            # The judge's configuration and a verdict; a drift alert; an API key.
            config = JudgeConfig(
                project=project,
                enabled=False,
                base_url="http://127.0.0.1:9/v1",
                model="judge-model",
                rubric="Is the answer right?",
            )
            judge_config_save(config=config, api_key=f"sk-secret-{side}")
            w.ids[f"judgeconfig_{side}"] = config.pk
            w.ids[f"judgeconfig_history_{side}"] = config.history.latest().history_id
            verdict = JudgeVerdict.objects.create(
                item=item, backend="openai", model="judge-model", rubric_version=1, label="pass"
            )
            w.ids[f"verdict_{side}"] = verdict.pk
            now = timezone.now()
            alert = DriftAlert.objects.create(
                project=project,
                model_version="v1",
                window_start=now,
                window_end=now,
                baseline_correct=90,
                baseline_total=100,
                window_correct=50,
                window_total=100,
                margin=0.05,
                created_at=now,
            )
            w.ids[f"alert_{side}"] = alert.pk
            # A file import that ran, and one still waiting for its mapping.
            content = json.dumps(factories.item_payload()).encode() + b"\n"
            for key in ("itemimport", "draft_import"):
                upload = SimpleUploadedFile(f"{key}.jsonl", content)
                w.ids[f"{key}_{side}"] = import_upload(
                    project=project, user=users["superuser"], upload=upload
                ).pk
            ItemImport.objects.filter(pk=w.ids[f"itemimport_{side}"]).update(status="done")
            # A control, and a quarantine of the first reviewer over a quiet period.
            control = control_create(
                project=project,
                content={
                    "prompt": "Is 12 g a day safe?",
                    "messages": [],
                    "output": "Yes.",
                    "model_name": "acme-med",
                    "model_version": "2026-11-01",
                    "confidence": 0.9,
                    "context": [],
                    "metadata": {},
                    "tools": [],
                    "is_transcript": False,
                },
                answer=KnownAnswer(verdict="reject"),
                by=users["superuser"],
            )
            w.ids[f"control_{side}"] = control.pk
            w.ids[f"control_history_{side}"] = control.history.latest().history_id
            quiet = timezone.now() - timedelta(days=60)
            quarantine = quarantine_create(
                project=project,
                reviewer=first,
                start=quiet,
                end=quiet + timedelta(days=1),
                reason="matrix",
                by=users["superuser"],
            ).quarantine
            w.ids[f"quarantine_{side}"] = quarantine.pk
            w.ids[f"quarantine_history_{side}"] = quarantine.history.latest().history_id
            w.ids[f"quality_reviewer_{side}"] = first.pk
            key, raw = api_key_create(project=project, name=f"client {side}")
            w.ids[f"apikey_{side}"] = key.pk
            w.ids[f"apikey_history_{side}"] = key.history.latest().history_id
            if side == "A":
                w.ids["raw_key_a"] = raw
                revoked, revoked_raw = api_key_create(project=project, name="old client")
                api_key_revoke(key=revoked)
                w.ids["raw_revoked"] = revoked_raw
        w.ids["account_A"] = users["second_a"].pk  # belongs to A only
        w.ids["account_B"] = users["shared"].pk  # belongs to A and to B
        group = Group.objects.get(name="Reviewer")
        w.ids["group_A"] = w.ids["group_B"] = group.pk
        w.ids["item_ct"] = ContentType.objects.get_for_model(ReviewItem).pk
        access = {
            "user_agent": "test",
            "ip_address": "127.0.0.1",
            "username": "x",
            "path_info": "/",
        }
        attempt = AccessAttempt.objects.create(
            **access, http_accept="*/*", get_data="", post_data="", failures_since_start=1
        )
        log = AccessLog.objects.create(**access, http_accept="*/*")
        failure = AccessFailureLog.objects.create(**access, http_accept="*/*")
        for key, row in (("attempt", attempt), ("accesslog", log), ("failurelog", failure)):
            w.ids[f"{key}_A"] = w.ids[f"{key}_B"] = row.pk
        cls.world = w
        cls.user_ids = {name: users[name].pk for name in USERS}

    def setUp(self):
        self.clients = {}
        User = get_user_model()
        for principal in PRINCIPALS:
            if principal == "key_a":
                client = Client(headers={"Authorization": f"Api-Key {self.world['raw_key_a']}"})
            elif principal == "revoked":
                client = Client(headers={"Authorization": f"Api-Key {self.world['raw_revoked']}"})
            else:
                client = Client()
                if principal != "anonymous":
                    client.force_login(User.objects.get(pk=self.user_ids[principal]))
            self.clients[principal] = client

    def _call(self, principal: str, method: str, url: str, data, api: bool):
        client = self.clients[principal]
        cookies = copy.deepcopy(client.cookies)
        outcome = {}
        try:
            with transaction.atomic():
                before = _writes()
                if method == "get":
                    response = client.get(url)
                elif api:
                    response = client.post(url, json.dumps(data or {}), "application/json")
                else:
                    response = client.post(url, data or {})
                outcome["response"] = response
                # Counters keep rolled-back writes too: compare with just before.
                outcome["wrote"] = _writes() != before
                raise _Rollback
        except _Rollback:
            pass
        finally:
            client.cookies = cookies
        return outcome["response"], outcome["wrote"]

    @staticmethod
    def _expected(route: Route, principal: str, side, method: str) -> tuple[bool, frozenset]:
        rule = route.get if method == "get" else route.post
        allowed = rule(principal, side)
        if route.login_required and principal in (NO_CREDENTIALS if route.api else NO_SESSION):
            # Nobody without a valid session or key gets in: the admin sends them to log in.
            return False, frozenset({401}) if route.api else frozenset({302})
        if allowed:
            return True, route.allowed_get if method == "get" else route.allowed_post
        return False, route.refused

    def test_every_url_pattern_is_in_the_matrix(self):
        known = set(all_routes())
        unknown = [route for route in resolver_routes() if route not in known]
        assert not unknown, "URL patterns without a rule in the permission matrix:\n" + "\n".join(
            unknown
        )

    def test_matrix(self):
        routes = all_routes()
        failures, counts = [], {"allowed": 0, "refused": 0}
        for key in resolver_routes():
            route = routes[key]
            for side in SIDES if route.sided else (None,):
                url = route.url(self.world, side or "A")
                data = route.post_data(self.world, side or "A") if route.post_data else None
                for principal in PRINCIPALS:
                    for method in ("get", "post"):
                        allowed, statuses = self._expected(route, principal, side, method)
                        try:
                            response, wrote = self._call(principal, method, url, data, route.api)
                        except Exception as exc:
                            failures.append(
                                f"{method.upper()} {url} as {principal}: raised {exc!r}"
                            )
                            continue
                        status = response.status_code
                        where = f"{method.upper()} {url} as {principal} ({key})"
                        if status not in statuses:
                            failures.append(f"{where}: {status}, expected {sorted(statuses)}")
                            continue
                        if not allowed:
                            counts["refused"] += 1
                            location = response.headers.get("Location", "")
                            if status == 302 and not (
                                location.startswith("/admin/login/") or location == "/admin/"
                            ):
                                failures.append(f"{where}: redirected to {location}")
                            if wrote:
                                failures.append(f"{where}: refused ({status}) but wrote rows")
                        else:
                            counts["allowed"] += 1
        assert not failures, f"{len(failures)} cells differ from the matrix:\n" + "\n".join(
            failures
        )
        print(f"permission matrix: {counts['allowed']} allowed, {counts['refused']} refused cells")
        assert counts["allowed"] > 300 and counts["refused"] > 1500, counts
