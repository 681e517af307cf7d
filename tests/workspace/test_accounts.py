import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from reviews.models import ProjectMembership
from reviews.roles import GROUP_PROJECT_ADMIN, GROUP_REVIEWER, GROUP_SENIOR
from reviews.services.accounts import user_roles_sync
from tests import factories

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:auth_user_add")
LIST_URL = reverse("admin:auth_user_changelist")
STRONG = "Corr3ct-Horse-Battery"


def perms(name: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=name).permissions.select_related("content_type")
    }


def test_the_migration_creates_the_three_role_groups_with_their_permissions():
    reviewer, senior, admin = perms(GROUP_REVIEWER), perms(GROUP_SENIOR), perms(GROUP_PROJECT_ADMIN)
    assert {"reviews.view_reviewitem", "reviews.add_review", "reviews.view_project"} <= reviewer
    assert "reviews.change_project" not in reviewer
    assert reviewer < senior < admin
    assert "adjudication.change_adjudicationcase" in senior
    assert {"reviews.change_project", "reviews.add_apikey", "auth.add_user"} <= admin
    assert "auth.change_user" in admin and "auth.delete_user" not in admin
    for never in ("reviews.add_project", "reviews.delete_reviewitem", "reviews.delete_review"):
        assert never not in admin


def test_groups_follow_the_roles_a_user_holds(project, django_user_model):
    user = django_user_model.objects.create_user("newbie")
    membership = factories.add_member(project, user, "reviewer")
    assert user_roles_sync(user=user) == {GROUP_REVIEWER}
    user.refresh_from_db()
    assert user.is_staff
    membership.role = "senior"
    membership.save()
    user_roles_sync(user=user)
    assert set(user.groups.values_list("name", flat=True)) == {GROUP_SENIOR}
    membership.delete()
    user_roles_sync(user=user)
    assert not user.groups.exists()


@pytest.fixture
def project_admin(client, django_user_model, project):
    user = django_user_model.objects.create_user("paula", password=STRONG, is_staff=True)
    factories.add_member(project, user, "admin")
    user_roles_sync(user=user)
    client.force_login(user)
    return user


def test_a_project_admin_creates_a_reviewer_and_assigns_them(client, project_admin, project):
    response = client.post(
        ADD_URL,
        {
            "username": "newbie",
            "password1": STRONG,
            "password2": STRONG,
            "usable_password": "true",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-project": str(project.pk),
            "memberships-0-role": "reviewer",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    membership = ProjectMembership.objects.get(user__username="newbie")
    assert membership.project == project and membership.role == "reviewer"
    assert membership.user.is_staff
    assert list(membership.user.groups.values_list("name", flat=True)) == [GROUP_REVIEWER]


def test_a_project_admin_cannot_assign_projects_they_do_not_run(
    client, project_admin, django_user_model
):
    elsewhere = factories.make_project(name="Elsewhere", slug="elsewhere")
    response = client.post(
        ADD_URL,
        {
            "username": "sneaky",
            "password1": STRONG,
            "password2": STRONG,
            "usable_password": "true",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-project": str(elsewhere.pk),
            "memberships-0-role": "admin",
        },
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not django_user_model.objects.filter(username="sneaky").exists()


def test_a_project_admin_sees_only_their_reviewers_and_never_superusers(
    client, project_admin, reviewer, outsider, admin_user
):
    content = client.get(LIST_URL).content.decode()
    assert "rita" in content and "paula" in content
    assert "otto" not in content  # a reviewer of another project only
    assert ">admin<" not in content
    change = client.get(reverse("admin:auth_user_change", args=[admin_user.pk]))
    assert change.status_code in (302, 403)


def test_a_project_admin_deactivates_a_reviewer(client, project_admin, reviewer):
    url = reverse("admin:auth_user_change", args=[reviewer.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"is_superuser" not in page.content
    membership = reviewer.memberships.get()
    response = client.post(
        url,
        {
            "username": "rita",
            "first_name": "Rita",
            "last_name": "",
            "email": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": str(membership.pk),
            "memberships-0-user": str(reviewer.pk),
            "memberships-0-project": str(membership.project_id),
            "memberships-0-role": "senior",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    reviewer.refresh_from_db()
    assert not reviewer.is_active
    assert reviewer.memberships.get().role == "senior"
    assert list(reviewer.groups.values_list("name", flat=True)) == [GROUP_SENIOR]


def test_a_reviewer_cannot_manage_accounts(client, reviewer):
    user_roles_sync(user=reviewer)
    client.force_login(reviewer)
    assert client.get(LIST_URL).status_code == 403
    assert client.get(reverse("admin:reviews_project_change", args=[1])).status_code in (302, 403)
