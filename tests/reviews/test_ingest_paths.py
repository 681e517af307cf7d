"""The fast paths of ingest agree with the reference ones they replace."""

import pytest
from django.db import transaction
from django.forms.models import model_to_dict

from reviews.api.serializers import ItemInputSerializer
from reviews.api.validation import validate_item
from reviews.checks import compile_checks, run_checks
from reviews.models import CheckResult, ReviewItem
from reviews.services import ingest
from reviews.services.bulk import items_insert
from tests.factories import item_payload, make_project, make_rule

BAD_ITEMS = [
    {},
    item_payload(external_id=""),
    item_payload(external_id="   "),
    item_payload(external_id="x" * 256),
    item_payload(prompt=None),
    item_payload(prompt=5),
    item_payload(output=False),
    item_payload(output="a\x00b"),
    item_payload(model_name=["m"]),
    item_payload(model_version=""),
    item_payload(confidence="0.3"),
    item_payload(confidence=True),
    item_payload(confidence=-1),
    item_payload(confidence=2),
    item_payload(confidence=float("inf")),
    item_payload(confidence=float("nan")),
    item_payload(messages="hello"),
    item_payload(messages=[{"role": "wizard", "content": "x"}]),
    item_payload(messages=[{"role": "user"}]),
    item_payload(messages=[{"role": "user", "content": 3}]),
    item_payload(context="doc"),
    item_payload(context=[{"source": "kb"}]),
    item_payload(context=[{"text": 1}]),
    item_payload(metadata=[1, 2]),
]
GOOD_ITEMS = [
    item_payload(),
    item_payload(output="", confidence=None),
    item_payload(confidence=0, messages=[{"role": "system", "content": ""}]),
    item_payload(confidence=1, context=["plain", {"text": "t", "source": "s", "title": "T"}]),
    item_payload(metadata={"nested": {"list": [1, "two", None]}}),
]


@pytest.mark.parametrize("raw", BAD_ITEMS + GOOD_ITEMS)
def test_fast_validator_agrees_with_the_documented_serializer(raw):
    serializer = ItemInputSerializer(data=raw)
    serializer_ok = serializer.is_valid()
    clean, errors = validate_item(raw)
    assert (clean is not None) == serializer_ok, (errors, serializer.errors)
    if serializer_ok:
        expected = dict(serializer.validated_data)
        expected.setdefault("messages", [])
        expected.setdefault("context", [])
        expected.setdefault("metadata", {})
        assert clean == dict(expected)
    else:
        assert set(errors) == set(serializer.errors)


def _build(project, payloads, checks):
    items, outcomes = [], []
    for payload in payloads:
        item, item_outcomes = ingest._build_item(
            project=project,
            payload=payload,
            digest=ingest.payload_hash(payload),
            checks=checks,
            risk=ingest.RiskMatcher(project.risk_keywords),
            judged=False,
            now=ingest.timezone.now(),
            user=None,
            via="test",
        )
        items.append(item)
        outcomes.append(item_outcomes)
    return items, outcomes


VARYING = ("id", "external_id", "payload_hash", "created_at", "updated_at", "decided_at")


def _snapshot(items):
    ids = [item.pk for item in items]
    rows = [
        {k: v for k, v in model_to_dict(item).items() if k not in VARYING}
        for item in ReviewItem.objects.filter(pk__in=ids).order_by("pk")
    ]
    history = [
        (h.history_type, h.status, h.history_change_reason, h.model_version, h.review_reasons)
        for h in ReviewItem.history.filter(id__in=ids).order_by("id")
    ]
    results = [
        (r.name, r.kind, r.severity, r.passed, r.message)
        for r in CheckResult.objects.filter(item_id__in=ids).order_by("item_id", "id")
    ]
    return rows, history, results


def test_copy_and_orm_inserts_write_the_same_rows(db):
    project = make_project(mode="monitor", risk_keywords=["fraud"], audit_sample_rate=1.0)
    make_rule(project, name="len", kind="max_length", limit=60)
    make_rule(project, name="kw", kind="banned_keywords", keywords=["ponzi"], severity="warning")
    checks = compile_checks(list(project.check_rules.all()))
    shapes = [
        {"output": "ok"},
        {"output": "possible fraud here"},
        {"output": "a ponzi scheme"},
        {"output": "x" * 100},
        {"output": "üñí", "context": [{"text": "tab\there, newline\nthere, back\\slash"}]},
        {"confidence": None, "metadata": {"k": "quote\" and 'single'"}},
    ]
    snapshots = []
    for use_copy in (True, False):
        payloads = [
            item_payload(external_id=f"{use_copy}-{i}", prompt=f"prompt {i}", **shape)
            for i, shape in enumerate(shapes)
        ]
        items, outcomes = _build(project, payloads, checks)
        with transaction.atomic():
            items_insert(items=items, outcomes=outcomes, user=None, use_copy=use_copy)
        assert all(item.pk for item in items)
        snapshots.append(_snapshot(items))
    copy_rows, orm_rows = snapshots
    assert len(copy_rows[0]) == len(shapes)
    assert copy_rows == orm_rows
    assert {row["status"] for row in copy_rows[0]} >= {"pending_review", "auto_approved"}
    assert run_checks(checks, "x" * 100)[0].passed is False


def test_payload_hash_is_stable_beyond_what_orjson_encodes(db):
    project = make_project()
    payload = item_payload(metadata={"trace": 2**70, "ratio": 1e-07, "text": "ünï\u2028"})
    first = ingest.item_ingest(project=project, payloads=[dict(payload)])
    again = ingest.item_ingest(project=project, payloads=[dict(payload)])
    assert first.created == [True] and again.created == [False]
    assert again.items[0].pk == first.items[0].pk
    stored = ReviewItem.objects.get(pk=first.items[0].pk)
    assert stored.metadata == {"trace": 2**70, "ratio": 1e-07, "text": "ünï\u2028"}
    assert ingest.payload_hash(payload) != ingest.payload_hash({**payload, "output": "other"})


def test_deleting_items_and_rules_still_cascades_to_check_results(db):
    project = make_project()
    kept_rule = make_rule(project, name="len", kind="max_length", limit=500)
    gone_rule = make_rule(project, name="min", kind="min_length", limit=1)
    first, second = ingest.item_ingest(
        project=project, payloads=[item_payload(), item_payload()]
    ).items
    assert CheckResult.objects.filter(item=first).count() == 2

    gone_rule.delete()
    results = CheckResult.objects.filter(item=second)
    assert sorted((r.name, r.rule_id) for r in results) == [
        ("len", kept_rule.pk),
        ("min", None),
    ]
    first.delete()
    assert not CheckResult.objects.filter(item_id=first.pk).exists()
    assert CheckResult.objects.filter(item=second).count() == 2
