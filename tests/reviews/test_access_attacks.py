"""The findings of the authorization review, replayed from the attacker's side.

Two projects: A ("clinical", the conftest's) and B ("bank"). Each attacker
belongs to A only (or, for ``mixed``, is admin of A and a plain reviewer of
B). Every request that used to work must now be refused, and nothing behind
it may change.
"""

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from adjudication.models import AdjudicationCase, CaseStatus
from adjudication.services import reviews_settle
from reviews.judge.services import judge_config_save
from reviews.models import ItemStatus, JudgeConfig, Project, ProjectMembership, Review, ReviewItem
from reviews.services.projects import api_key_create
from reviews.services.transitions import item_transition
from tests import factories

PASSWORD = "an-old-password-1"


@pytest.fixture
def bank(db):
    return factories.make_project(
        name="Bank answers",
        slug="bank",
        webhook_url="https://hooks.bank.example/hitl",
        webhook_secret="bank-webhook-secret-value",
        reviews_required=2,
    )


@pytest.fixture
def people(django_user_model, project, bank):
    """reviewer_a, admin_a, mixed (admin of A, reviewer of B), senior_b, shared (A and B)."""
    users = {
        name: django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
        for name in ("reviewer_a", "admin_a", "mixed", "senior_b", "reviewer_b", "second_b")
    }
    users["shared"] = django_user_model.objects.create_user(
        "shared", password=PASSWORD, is_staff=True
    )
    factories.add_member(project, users["reviewer_a"], "reviewer")
    factories.add_member(project, users["admin_a"], "admin")
    factories.add_member(project, users["mixed"], "admin")
    factories.add_member(bank, users["mixed"], "reviewer")
    factories.add_member(bank, users["senior_b"], "senior")
    factories.add_member(bank, users["reviewer_b"], "reviewer")
    factories.add_member(bank, users["second_b"], "reviewer")
    factories.add_member(project, users["shared"], "reviewer")
    factories.add_member(bank, users["shared"], "senior")
    return users


def login(client, user):
    client.force_login(user)
    return client


def history_form_url(model_name: str, obj) -> str:
    app = obj._meta.app_label
    version = obj.history.latest().history_id
    return reverse(f"admin:{app}_{model_name}_simple_history", args=[obj.pk, version])


@pytest.fixture
def disputed_b(bank, people):
    """An item of B whose two blind reviews disagree: in adjudication, its case open."""
    (item,) = factories.ingest(bank)
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item.pk)
        item_transition(item=item, to_status=ItemStatus.IN_REVIEW, reason="claimed")
        reviews = [
            Review.objects.create(item=item, reviewer=people["reviewer_b"], verdict="approve"),
            Review.objects.create(
                item=item,
                reviewer=people["second_b"],
                verdict="reject",
                reason_code="factual_error",
                severity="major",
            ),
        ]
        reviews_settle(item=item, reviews=reviews, user=people["second_b"])
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    return item


# --- simple-history's revert form ---------------------------------------------------


def test_a_reviewer_of_a_cannot_rewrite_bs_webhook_through_the_revert_form(client, bank, people):
    login(client, people["reviewer_a"])
    url = history_form_url("project", bank)
    response = client.post(
        url,
        {
            "name": bank.name,
            "slug": bank.slug,
            "webhook_url": "https://attacker.example/steal",
            "webhook_secret": "attacker-secret",
        },
    )
    assert response.status_code == 405
    bank.refresh_from_db()
    assert bank.webhook_url == "https://hooks.bank.example/hitl"
    assert bank.webhook_secret == "bank-webhook-secret-value"
    assert client.get(url).status_code == 403


def test_nobody_reverts_an_item_past_the_state_machine(client, admin_user, disputed_b):
    """Not even a superuser: an item's history page is read-only, its case stays open."""
    first = disputed_b.history.order_by("history_date", "history_id").first()
    url = reverse("admin:reviews_reviewitem_simple_history", args=[disputed_b.pk, first.pk])
    login(client, admin_user)
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # no revert button
    response = client.post(url, {"status": ItemStatus.PENDING_REVIEW})
    assert response.status_code == 405
    disputed_b.refresh_from_db()
    assert disputed_b.status == ItemStatus.IN_ADJUDICATION
    assert AdjudicationCase.objects.get(item=disputed_b).status == CaseStatus.OPEN


def test_a_project_admin_of_a_cannot_point_bs_judge_at_their_server(client, bank, people):
    config = JudgeConfig(
        project=bank, enabled=True, base_url="https://judge.bank.example/v1", model="m", rubric="r"
    )
    judge_config_save(config=config, api_key="sk-bank-judge-key")
    login(client, people["admin_a"])
    url = history_form_url("judgeconfig", config)
    response = client.post(
        url,
        {
            "project": bank.pk,
            "enabled": "on",
            "backend": "openai",
            "base_url": "http://127.0.0.1:9999/v1",
            "model": "m",
            "rubric": "r",
        },
    )
    assert response.status_code == 405
    config.refresh_from_db()
    assert config.base_url == "https://judge.bank.example/v1"
    assert client.get(url).status_code == 403
    change = client.get(reverse("admin:reviews_judgeconfig_change", args=[config.pk]))
    assert change.status_code == 302  # Django's "doesn't exist" redirect: out of scope


# --- history pages of another project ----------------------------------------------------


@pytest.mark.parametrize("attacker", ["reviewer_a", "admin_a", "mixed"])
def test_history_pages_of_b_are_refused_to_staff_of_a(client, bank, people, disputed_b, attacker):
    login(client, people[attacker])
    case = AdjudicationCase.objects.get(item=disputed_b)
    pages = [
        reverse("admin:reviews_reviewitem_history", args=[disputed_b.pk]),
        history_form_url("reviewitem", disputed_b),
        reverse("admin:reviews_project_history", args=[bank.pk]),
        history_form_url("project", bank),
        reverse("admin:adjudication_adjudicationcase_history", args=[case.pk]),
        history_form_url("adjudicationcase", case),
    ]
    for url in pages:
        response = client.get(url)
        if attacker == "mixed" and "reviewitem" in url:
            # mixed reviews in B: they may read B's items and their audit trail.
            assert response.status_code == 200, url
            continue
        if attacker == "mixed" and "/project/" in url:
            assert response.status_code == 200, url
            assert b"bank-webhook-secret-value" not in response.content
            continue
        assert response.status_code == 403, url
        assert disputed_b.prompt.encode() not in response.content
        assert b"bank-webhook-secret-value" not in response.content


def test_a_malformed_history_id_is_a_404_not_a_500(client, admin_user, project):
    login(client, admin_user)
    assert client.get(f"/admin/reviews/reviewitem/{'x' * 5}/history/").status_code == 404
    assert client.get(f"/admin/reviews/project/{project.pk}/history/abc/").status_code == 404


# --- secrets are write-only -----------------------------------------------------------------


def test_the_webhook_secret_is_never_rendered(client, admin_user, bank, people):
    for user in (admin_user, people["mixed"], people["senior_b"]):
        login(client, user)
        for url in (
            reverse("admin:reviews_project_change", args=[bank.pk]),
            history_form_url("project", bank),
        ):
            response = client.get(url)
            assert response.status_code == 200, (user, url)
            assert b"bank-webhook-secret-value" not in response.content


def test_the_webhook_secret_is_kept_replaced_generated_and_removed(client, admin_user, bank):
    login(client, admin_user)
    url = reverse("admin:reviews_project_change", args=[bank.pk])

    def post(**changes):
        form = client.get(url).context["adminform"].form
        data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
        data.pop("webhook_secret", None)  # a browser never sends it back (write-only)
        data.update(
            {
                "risk_keywords": "[]",
                "reason_codes": '["factual_error"]',
                "webhook_url": "",
                "webhook_secret_action": "keep",
            }
        )
        for prefix in ("check_rules", "rubric_criteria", "memberships"):
            data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        data.update(changes)
        return client.post(url, data, follow=True)

    post()
    bank.refresh_from_db()
    assert bank.webhook_secret == "bank-webhook-secret-value"
    post(webhook_secret="a-new-secret-typed-in")
    bank.refresh_from_db()
    assert bank.webhook_secret == "a-new-secret-typed-in"
    generated = post(webhook_secret_action="generate")
    bank.refresh_from_db()
    assert bank.webhook_secret not in ("", "a-new-secret-typed-in")
    assert bank.webhook_secret.encode() in generated.content  # shown once, in the message
    assert bank.webhook_secret.encode() not in client.get(url).content
    removed = post(webhook_secret_action="remove")
    assert removed.redirect_chain, removed.context["adminform"].form.errors
    bank.refresh_from_db()
    assert bank.webhook_secret == ""


# --- accounts -------------------------------------------------------------------------------


def test_a_project_admin_cannot_set_the_password_of_a_member_of_another_project(client, people):
    shared = people["shared"]
    login(client, people["admin_a"])
    url = reverse("admin:auth_user_password_change", args=[shared.pk])
    assert client.get(url).status_code in (302, 403, 404)
    response = client.post(
        url, {"password1": "taken-over-pass-9", "password2": "taken-over-pass-9"}
    )
    assert response.status_code in (302, 403, 404)
    assert response.headers.get("Location", "/admin/") == "/admin/"
    shared.refresh_from_db()
    assert shared.check_password(PASSWORD)
    client.logout()
    attempt = client.post(
        reverse("admin:login"), {"username": "shared", "password": "taken-over-pass-9"}
    )
    assert attempt.status_code == 200  # the login form again, with its error
    assert "_auth_user_id" not in client.session


def test_a_project_admin_cannot_touch_superusers_staff_flags_or_outside_roles(
    client, admin_user, project, bank, people
):
    admin_a = people["admin_a"]
    login(client, admin_a)
    for target in (admin_user, people["shared"], people["senior_b"]):
        url = reverse("admin:auth_user_change", args=[target.pk])
        assert client.get(url).status_code == 302, target  # "doesn't exist": out of scope
        client.post(url, {"username": target.username, "is_superuser": "on", "is_active": ""})
        target.refresh_from_db()
        assert target.is_active
    # Their own reviewer's form offers no staff or superuser flag, and no project B.
    own = people["reviewer_a"]
    page = client.get(reverse("admin:auth_user_change", args=[own.pk]))
    assert page.status_code == 200
    assert b'name="is_superuser"' not in page.content
    assert b'name="is_staff"' not in page.content
    choices = page.context["inline_admin_formsets"][0].formset.forms[0].fields["project"]
    assert list(choices.queryset) == [project]


def test_a_project_admin_cannot_change_the_role_of_a_member_of_another_project(
    client, project, people
):
    """The project's membership inline refuses rows of people who also belong elsewhere."""
    login(client, people["admin_a"])
    shared_membership = ProjectMembership.objects.get(project=project, user=people["shared"])
    url = reverse("admin:reviews_project_change", args=[project.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.pop("webhook_secret", None)
    data.update({"risk_keywords": "[]", "reason_codes": '["factual_error"]'})
    data["webhook_url"] = ""
    data["webhook_secret_action"] = "keep"
    memberships = list(ProjectMembership.objects.filter(project=project).order_by("pk"))
    data.update(
        {
            "check_rules-TOTAL_FORMS": "0",
            "check_rules-INITIAL_FORMS": "0",
            "rubric_criteria-TOTAL_FORMS": "0",
            "rubric_criteria-INITIAL_FORMS": "0",
            "memberships-TOTAL_FORMS": str(len(memberships)),
            "memberships-INITIAL_FORMS": str(len(memberships)),
        }
    )
    for index, membership in enumerate(memberships):
        data[f"memberships-{index}-id"] = membership.pk
        data[f"memberships-{index}-project"] = project.pk
        data[f"memberships-{index}-user"] = membership.user_id
        data[f"memberships-{index}-role"] = (
            "admin" if membership.pk == shared_membership.pk else membership.role
        )
    response = client.post(url, data)
    assert response.status_code == 200
    assert b"they also belong to projects you do not administer" in response.content
    shared_membership.refresh_from_db()
    assert shared_membership.role == "reviewer"


def test_user_autocomplete_offers_only_managed_accounts(client, people):
    login(client, people["admin_a"])
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "reviews", "model_name": "projectmembership", "field_name": "user"},
    )
    assert response.status_code == 200
    names = {row["text"] for row in response.json()["results"]}
    assert "reviewer_a" in names
    assert names.isdisjoint({"shared", "senior_b", "mixed", "admin"})


# --- operations pages ---------------------------------------------------------------------


def test_reviewers_and_project_admins_cannot_empty_queues(client, admin_user, people, settings):
    queue = django_rq.get_queue("default")
    job = queue.enqueue("reviews.judge.jobs.nonexistent_for_the_test")
    try:
        before = queue.count
        for name in ("reviewer_a", "admin_a"):
            login(client, people[name])
            assert client.get("/admin/django_rq/dashboard/").status_code == 403
            assert client.post("/admin/django_rq/dashboard/queues/0/empty/").status_code == 403
            assert client.get("/admin/rq/").status_code == 404  # the old mount is gone
            assert queue.count == before
        login(client, admin_user)
        assert client.get("/admin/django_rq/dashboard/").status_code == 200
    finally:
        job.delete()


# --- role groups are global; decisions are per project --------------------------------------


def test_admin_of_a_who_reviews_in_b_sees_none_of_bs_configuration(client, bank, people):
    """Admin group membership (earned in A) opens no page of B's keys, deliveries or judge."""
    key, _raw = api_key_create(project=bank, name="bank client")
    config = JudgeConfig(project=bank, enabled=False, model="m", rubric="r")
    judge_config_save(config=config)
    login(client, people["mixed"])
    keys = client.get(reverse("admin:reviews_apikey_changelist"))
    assert keys.status_code == 200
    assert b"bank client" not in keys.content
    assert client.get(reverse("admin:reviews_apikey_change", args=[key.pk])).status_code == 302
    deliveries = client.get(reverse("admin:reviews_webhookdelivery_changelist"))
    assert b"Bank answers" not in deliveries.content
    calibration = client.get(reverse("admin:reviews_judge_calibration"), {"project": str(bank.pk)})
    assert calibration.status_code == 200
    assert b"Bank answers" not in calibration.content
    filters = client.get(reverse("admin:reviews_driftalert_changelist")).content
    assert b"Bank answers" not in filters
    # Items of B they review are theirs to see, through the item pages.
    assert Project.objects.filter(slug="bank").exists()


def test_an_inactive_users_session_opens_nothing(client, people, project):
    user = people["admin_a"]
    login(client, user)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    response = client.get(reverse("admin:reviews_project_change", args=[project.pk]))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")
