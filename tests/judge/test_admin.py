"""The judge admin: write-only API key, rubric versions, verdicts, calibration report."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from reviews.judge.services import judge_api_key, judge_pending_items
from reviews.models import ItemStatus, JudgeConfig, JudgeVerdict, ReviewItem
from tests.factories import add_member, ingest, item_payload, make_project
from tests.judge.conftest import make_judge

SECRET = "sk-live-very-secret-4242"


def form_data(project, **overrides):
    data = {
        "project": project.pk,
        "enabled": "on",
        "backend": "openai",
        "base_url": "http://127.0.0.1:8001/v1",
        "model": "judge-large",
        "api_key": "",
        "api_key_env": "",
        "rubric": "Be accurate.",
        "threshold": "0.5",
        "timeout_seconds": "30",
        "max_concurrency": "50",
        "max_retries": "3",
        "response_format": "json_schema",
        "max_tokens": "1024",
    }
    data.update(overrides)
    return data


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_api_key_is_write_only_and_encrypted(admin_client, db):
    project = make_project()
    add = reverse("admin:reviews_judgeconfig_add")
    response = admin_client.post(add, form_data(project, api_key=SECRET))
    assert response.status_code == 302, response.content.decode()[:2000]
    config = JudgeConfig.objects.get(project=project)
    assert config.api_key_encrypted and SECRET not in config.api_key_encrypted

    change = reverse("admin:reviews_judgeconfig_change", args=[config.pk])
    page = admin_client.get(change).content.decode()
    assert SECRET not in page and config.api_key_encrypted not in page
    assert "A key is stored (encrypted); it is never shown." in page
    assert 'type="password"' in page

    # Blank keeps the key; the history never holds it.
    admin_client.post(change, form_data(project, model="judge-xl"))
    config.refresh_from_db()
    assert config.model == "judge-xl" and config.api_key_encrypted
    assert judge_api_key(config=config) == SECRET
    history = admin_client.get(reverse("admin:reviews_judgeconfig_history", args=[config.pk]))
    assert SECRET not in history.content.decode()
    assert not hasattr(config.history.first(), "api_key_encrypted")

    admin_client.post(change, form_data(project, clear_api_key="on"))
    config.refresh_from_db()
    assert config.api_key_encrypted == ""


def test_rubric_change_bumps_the_version(admin_client, db):
    project = make_project()
    admin_client.post(reverse("admin:reviews_judgeconfig_add"), form_data(project))
    config = JudgeConfig.objects.get(project=project)
    change = reverse("admin:reviews_judgeconfig_change", args=[config.pk])
    admin_client.post(change, form_data(project, threshold="0.7"))
    config.refresh_from_db()
    assert (config.rubric_version, config.threshold) == (1, 0.7)
    admin_client.post(change, form_data(project, rubric="Be accurate and kind."))
    config.refresh_from_db()
    assert config.rubric_version == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key_env", "not a name!"),
        ("max_concurrency", "0"),
        ("threshold", "1.5"),
        ("timeout_seconds", "0"),
        ("base_url", "not-a-url"),
        ("rubric", "   "),
        ("backend", "gemini"),
    ],
)
def test_bad_input_is_a_form_error_and_stores_nothing(admin_client, db, field, value):
    project = make_project()
    response = admin_client.post(
        reverse("admin:reviews_judgeconfig_add"), form_data(project, **{field: value})
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not JudgeConfig.objects.exists()


def test_item_page_shows_the_verdict_escaped(admin_client, judged_monitor_project, fake_judge):
    make_judge(judged_monitor_project, fake_judge)
    (item,) = ingest(judged_monitor_project, item_payload(output="[[judge:flag]]"))
    judge_pending_items(item_ids=[item.pk])
    page = admin_client.get(reverse("admin:reviews_reviewitem_change", args=[item.pk]))
    html = page.content.decode()
    assert "&lt;b&gt;liver&lt;/b&gt;" in html and "<b>liver</b>" not in html
    verdicts = admin_client.get(reverse("admin:reviews_judgeverdict_changelist"))
    assert verdicts.status_code == 200 and "judge-large" in verdicts.content.decode()


def decided(project, fake, spec):
    """Ingest, judge and 'decide' items: spec is [(marker, human verdict, count)]."""
    payloads, humans = [], []
    for marker, human, count in spec:
        for _ in range(count):
            payloads.append(item_payload(output=f"[[judge:{marker}]]"))
            humans.append(human)
    items = ingest(project, *payloads)
    judge_pending_items(item_ids=[item.pk for item in items])
    for item, human in zip(items, humans, strict=True):
        # Test set-up: the final human decision, as review submission would leave it.
        ReviewItem.objects.filter(pk=item.pk).update(
            final_verdict=human, status=ItemStatus.APPROVED if human == "approve" else "rejected"
        )
    return items


def test_calibration_report_counts_agreement(admin_client, judged_monitor_project, fake_judge):
    make_judge(judged_monitor_project, fake_judge)
    decided(
        judged_monitor_project,
        fake_judge,
        [
            ("flag", "reject", 3),  # tp
            ("flag", "approve", 1),  # fp
            ("pass", "correct", 2),  # fn
            ("pass", "approve", 4),  # tn
            ("garbage", "approve", 1),  # judge error: counted apart
        ],
    )
    ingest(judged_monitor_project, item_payload())  # judged later, no human decision
    url = reverse("admin:reviews_judge_calibration")
    response = admin_client.get(url, {"project": judged_monitor_project.pk})
    assert response.status_code == 200
    report = response.context["report"]
    a = report.overall
    assert (a.tp, a.fp, a.fn, a.tn, a.errors) == (3, 1, 2, 4, 1)
    assert a.precision == pytest.approx(0.75)
    assert a.recall == pytest.approx(0.6)
    assert a.accuracy == pytest.approx(0.7)
    assert a.matrix["flag"]["reject"] == 3 and a.matrix["error"]["approve"] == 1
    assert report.judged == 11
    html = response.content.decode()
    assert 'data-cell="tp">3<' in html and 'data-metric="precision">0.750<' in html
    assert [row.judge_model for row in report.slices] == ["judge-large"]


def test_calibration_query_count_does_not_grow(
    admin_client, judged_monitor_project, fake_judge, django_assert_max_num_queries
):
    make_judge(judged_monitor_project, fake_judge)
    url = reverse("admin:reviews_judge_calibration")
    decided(judged_monitor_project, fake_judge, [("flag", "reject", 2), ("pass", "approve", 2)])
    with django_assert_max_num_queries(9) as small:
        admin_client.get(url, {"project": judged_monitor_project.pk})
    decided(judged_monitor_project, fake_judge, [("flag", "approve", 20), ("pass", "reject", 20)])
    with django_assert_max_num_queries(len(small.captured_queries)):
        admin_client.get(url, {"project": judged_monitor_project.pk})


def test_calibration_is_limited_to_visible_projects(client, django_user_model, db, fake_judge):
    mine, other = make_project(name="Mine"), make_project(name="Other")
    user = django_user_model.objects.create_user("pam", password="pw-pam-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_judgeconfig"))
    add_member(mine, user, "admin")
    client.force_login(user)
    url = reverse("admin:reviews_judge_calibration")
    response = client.get(url, {"project": other.pk})
    assert response.status_code == 200
    assert response.context["selected"] == mine
    assert [p.name for p in response.context["projects"]] == ["Mine"]
    assert JudgeVerdict.objects.count() == 0
