"""The item list: full-text search, filters scoped to the user's projects, query count."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviews.models import JudgeVerdict, ReviewItem
from reviews.services.search import search_index_pending
from reviews.workspace.services import ReviewInput, assignment_assign, review_submit
from tests import factories

LIST = reverse("admin:reviews_reviewitem_changelist")


@pytest.fixture
def other_project(db):
    return factories.make_project(name="Tax advice", slug="tax", reason_codes=["tax_secret"])


@pytest.fixture
def outsider(django_user_model, other_project):
    user = django_user_model.objects.create_user("otto", password="otto-pass-1", is_staff=True)
    factories.add_member(other_project, user, "reviewer")
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ids(response) -> set[int]:
    return {item.pk for item in response.context["cl"].result_list}


def _review(project, reviewer, item, **data):
    senior, _ = get_user_model().objects.get_or_create(username="boss", is_superuser=True)
    assignment = assignment_assign(item_id=item.pk, reviewer=reviewer, by=senior)
    return review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput(**data))


def test_full_text_search_finds_words_in_prompt_output_and_notes_with_stemming(project, reviewer):
    (dose,) = factories.ingest(
        project, factories.item_payload(prompt="Paracetamol doses for children?")
    )
    (halluc,) = factories.ingest(
        project, factories.item_payload(prompt="Who wrote it?", output="Dickens wrote it.")
    )
    (plain,) = factories.ingest(
        project, factories.item_payload(prompt="Ibuprofen?", output="Take with food.")
    )
    _review(
        project,
        reviewer,
        dose,
        verdict="reject",
        reason_code="factual_error",
        severity="major",
        note="Paediatric dose is wrong",
    )
    _review(
        project,
        reviewer,
        halluc,
        verdict="reject",
        reason_code="hallucination",
        severity="minor",
        note="A hallucination: Austen wrote it",
    )
    client = _client(reviewer)
    assert _ids(client.get(LIST, {"q": "paracetamol dose"})) == set()  # not indexed yet
    assert _ids(client.get(LIST, {"q": plain.external_id})) == {plain.pk}  # an exact id at once
    assert search_index_pending() == 3
    assert _ids(client.get(LIST, {"q": "paracetamol dose"})) == {dose.pk}
    assert _ids(client.get(LIST, {"q": "hallucinations"})) == {halluc.pk}  # in a note, stemmed
    assert _ids(client.get(LIST, {"q": "DICKENS"})) == {halluc.pk}
    assert _ids(client.get(LIST, {"q": "paracetamol food"})) == set()
    assert _ids(client.get(LIST, {"q": plain.external_id})) == {plain.pk}
    # The search runs on the documents' GIN index, not a scan of every prompt.
    query = ReviewItem.objects.search("paracetamol dose").values("pk").query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "item_search_gin_idx" in plan


def test_search_never_shows_another_projects_items(project, reviewer, other_project):
    factories.ingest(other_project, factories.item_payload(prompt="Paracetamol elsewhere"))
    (mine,) = factories.ingest(project, factories.item_payload(prompt="Paracetamol here"))
    search_index_pending()
    assert _ids(_client(reviewer).get(LIST, {"q": "paracetamol"})) == {mine.pk}


def test_filters_by_reason_severity_judge_reviewer_confidence_model_and_date(
    project, reviewer, second_reviewer
):
    a, b, c = factories.ingest(
        project,
        factories.item_payload(confidence=0.2, model_version="v2"),
        factories.item_payload(confidence=0.6, model_name="other-model"),
        factories.item_payload(confidence=0.95),
    )
    _review(project, reviewer, a, verdict="reject", reason_code="unsafe", severity="critical")
    _review(project, second_reviewer, b, verdict="approve")
    JudgeVerdict.objects.create(
        item=c, backend="openai", model="judge", rubric_version=1, label="flag"
    )
    search_index_pending()
    client = _client(reviewer)
    day = a.created_at.date().isoformat()
    cases = [
        ({"reason": "unsafe"}, {a.pk}),
        ({"severity": "critical"}, {a.pk}),
        ({"judge": "flag"}, {c.pk}),
        ({"reviewer": str(second_reviewer.pk)}, {b.pk}),
        ({"confidence_min": "0.5", "confidence_max": "0.7"}, {b.pk}),
        ({"confidence_min": "0.5"}, {b.pk, c.pk}),
        ({"model_version": "v2"}, {a.pk}),
        ({"model_name": "other-model"}, {b.pk}),
        ({"created_from": day, "created_to": day}, {a.pk, b.pk, c.pk}),
        ({"created_from": "2001-01-01", "created_to": "2001-01-02"}, set()),
        ({"q": "paracetamol", "confidence_max": "0.7", "reason": "unsafe"}, {a.pk}),
    ]
    for params, expected in cases:
        response = client.get(LIST, params)
        assert response.status_code == 200, params
        assert _ids(response) == expected, params


def test_a_malformed_filter_value_is_refused_not_a_500(project, reviewer):
    client = _client(reviewer)
    for params in ({"confidence_min": "lots"}, {"created_from": "yesterday"}, {"judge": "nope"}):
        response = client.get(LIST, params)
        assert response.status_code == 302, params
        assert "e=1" in response["Location"]


def test_nul_and_lone_surrogates_in_filters_and_search_are_not_a_500(project, reviewer):
    factories.ingest(project, factories.item_payload(prompt="paracetamol dose"))
    client = _client(reviewer)
    for params in ({"model_name": "a\x00b"}, {"model_version": "\x00"}):
        response = client.get(LIST, params)
        assert response.status_code == 302, params
        assert "e=1" in response["Location"]
    # Django's search form drops a term with NUL (the list is unfiltered); not a 500.
    for query in ("q=%00", "q=paracetamol+%00dose", "q=%ED%A0%80"):
        assert client.get(f"{LIST}?{query}").status_code == 200, query


def test_filter_choices_offer_only_the_users_projects_reviewers_and_reasons(
    project, reviewer, outsider, other_project
):
    page = _client(reviewer).get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "tax_secret" not in html
    assert "otto" not in html
    assert "hallucination" in html
    assert "rita" in html
    # The reviewer filter does not show another project's reviewer's items even when asked.
    (theirs,) = factories.ingest(other_project)
    response = _client(reviewer).get(LIST, {"reviewer": str(outsider.pk)})
    assert response.status_code == 302 and "e=1" in response["Location"]
    assert theirs.pk  # stored, and never listed to this reviewer


def test_changelist_query_count_is_constant_as_items_grow(project, reviewer, second_reviewer):
    client = _client(reviewer)
    params = {"q": "paracetamol", "confidence_max": "0.95", "severity": "none"}

    def count_queries() -> int:
        search_index_pending()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST, params)
        assert response.status_code == 200
        return len(queries)

    factories.ingest(project, *[factories.item_payload() for _ in range(3)])
    first = count_queries()
    items = factories.ingest(project, *[factories.item_payload() for _ in range(60)])
    _review(project, reviewer, items[0], verdict="approve")
    JudgeVerdict.objects.create(
        item=items[1], backend="openai", model="judge", rubric_version=1, label="pass"
    )
    assert count_queries() == first
    assert first <= 12


def test_reason_and_severity_filters_never_reveal_a_pending_blind_review(
    django_user_model, reviewer
):
    double = factories.make_project(name="Two reviews", slug="double", reviews_required=2)
    factories.add_member(double, reviewer, "reviewer")
    colleague = django_user_model.objects.create_user("cole", password="c-pass-1", is_staff=True)
    factories.add_member(double, colleague, "reviewer")
    (item,) = factories.ingest(double)
    _review(double, colleague, item, verdict="reject", reason_code="unsafe", severity="major")
    client = _client(reviewer)
    assert _ids(client.get(LIST, {"reason": "unsafe"})) == set()
    assert _ids(client.get(LIST, {"severity": "major"})) == set()
    page = client.get(reverse("admin:reviews_reviewitem_change", args=[item.pk]))
    assert page.status_code == 200
    assert b"unsafe" not in page.content
