"""Precompiled querysets answer what the queryset itself answers."""

import threading

import pytest
from django.db import connection

from reviews.models import ApiKey, CheckRule, JudgeConfig
from reviews.precompiled import Precompiled
from reviews.services.projects import api_key_create
from tests import factories

KEY_WITH_PROJECT = Precompiled(
    lambda hashed: ApiKey.objects.select_related("project", "project__judge_config").filter(
        hashed_key=hashed
    ),
    sample=["sample-hash"],
)
RULES = Precompiled(lambda pk: CheckRule.objects.filter(project_id=pk), sample=[-42])


def test_rows_select_related_and_converted_values_match_the_orm(db):
    judged = factories.make_project(slug="judged")
    JudgeConfig.objects.create(project=judged, base_url="https://j.example.com", model="m")
    plain = factories.make_project(slug="plain", risk_keywords=["lawsuit"])
    factories.make_rule(plain, name="b", kind="banned_keywords", keywords=["x", "y"])
    factories.make_rule(plain, name="a", kind="max_length", limit=5)
    for project in (judged, plain):
        key, _raw = api_key_create(project=project, name="k")
        (found,) = KEY_WITH_PROJECT(key.hashed_key)
        assert found == key
        assert found.project.risk_keywords == project.risk_keywords  # JSON converted
        assert found.project.created_at == project.created_at
        judge = getattr(found.project, "judge_config", None)
        assert (judge.pk if judge else None) == (
            judged.judge_config.pk if project == judged else None
        )
        rules = RULES(project.pk)
        assert [(r.pk, r.keywords, r.limit) for r in rules] == [
            (r.pk, r.keywords, r.limit) for r in project.check_rules.all()
        ]
    assert KEY_WITH_PROJECT("no such hash") == []


def test_each_thread_compiles_for_its_own_connection(transactional_db):
    project = factories.make_project(slug="threads")
    factories.make_rule(project, kind="min_length", limit=3)
    RULES(project.pk)
    answers = []

    def run():
        try:
            answers.append([r.name for r in RULES(project.pk)])
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert answers == [[r.name for r in project.check_rules.all()]]


def test_a_sample_value_that_is_not_a_parameter_is_refused(db):
    query = Precompiled(lambda pk: CheckRule.objects.filter(project_id=pk + 1), sample=[5])
    with pytest.raises(ValueError, match="not a parameter"):
        query(5)


def test_a_value_used_twice_fills_both_places_and_annotations_are_attributes(db):
    from django.db.models import Q, Value

    project = factories.make_project(slug="twice")
    factories.make_rule(project, kind="min_length", limit=3)
    query = Precompiled(
        lambda pk: CheckRule.objects.filter(Q(project_id=pk) | Q(project_id=pk)).annotate(
            tag=Value("x")
        ),
        sample=[-77],
    )
    (rule,) = query(project.pk)
    assert rule.project_id == project.pk and rule.tag == "x"
    assert query(-1) == []
