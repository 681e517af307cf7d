import json

import pytest
from django.core.exceptions import ValidationError

from reviews.checks import compile_checks, run_checks
from reviews.models import CheckResult, CheckRule
from tests.factories import ingest, item_payload, make_project, make_rule

SCHEMA = {
    "type": "object",
    "required": ["diagnosis", "icd10"],
    "properties": {
        "diagnosis": {"type": "string"},
        "icd10": {"type": "string", "pattern": "^[A-Z]"},
    },
}

# (rule fields, output that passes, output that fails, expected failure message fragment)
CASES = {
    "json_valid": ({"kind": "json_valid"}, '{"a": 1}', '{"a": 1', "not valid JSON"),
    "json_schema": (
        {"kind": "json_schema", "json_schema": SCHEMA},
        json.dumps({"diagnosis": "flu", "icd10": "J11"}),
        json.dumps({"diagnosis": "flu", "icd10": "j11"}),
        "Schema violation at /icd10",
    ),
    "json_schema_not_json": (
        {"kind": "json_schema", "json_schema": SCHEMA},
        json.dumps({"diagnosis": "flu", "icd10": "J11"}),
        "flu, J11",
        "not valid JSON",
    ),
    "must_match": (
        {"kind": "must_match", "pattern": r"\bconsult (a|your) (doctor|physician)\b"},
        "Rest, fluids; consult your doctor if it persists.",
        "Rest and fluids.",
        "does not match",
    ),
    "must_not_match": (
        {"kind": "must_not_match", "pattern": r"\b\d{3}-\d{2}-\d{4}\b"},
        "No identifiers here.",
        "Client SSN 123-45-6789 on file.",
        "matches",
    ),
    "min_length": (
        {"kind": "min_length", "limit": 10},
        "long enough text",
        "short",
        "minimum is 10",
    ),
    "max_length": (
        {"kind": "max_length", "limit": 10},
        "short",
        "much too long text",
        "maximum is 10",
    ),
    "required_keywords": (
        {"kind": "required_keywords", "keywords": ["disclaimer", "Not advice"]},
        "DISCLAIMER: not advice.",
        "Disclaimer only.",
        "Missing keywords: Not advice",
    ),
    "banned_keywords": (
        {"kind": "banned_keywords", "keywords": ["guaranteed", "risk-free"]},
        "Returns vary with the market.",
        "This fund is Risk-Free and guaranteed.",
        "Banned keywords present: guaranteed, risk-free",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_check_kind_passes_and_fails(db, case):
    fields, good, bad, message = CASES[case]
    project = make_project()
    make_rule(project, name=case, **fields)
    checks = compile_checks(list(project.check_rules.all()))
    [passed] = run_checks(checks, good)
    [failed] = run_checks(checks, bad)
    assert passed.passed, passed.message
    assert not failed.passed
    assert message in failed.message


def test_keywords_match_whole_words_in_any_case(db):
    project = make_project()
    make_rule(project, kind="banned_keywords", keywords=["cure"])
    checks = compile_checks(list(project.check_rules.all()))
    assert run_checks(checks, "This will CURE you.")[0].passed is False
    assert run_checks(checks, "Treatment may be curative.")[0].passed is True


def test_blocking_failure_auto_rejects_with_the_reason(db):
    project = make_project(mode="gate")
    make_rule(project, name="valid json", kind="json_valid", severity="blocking")
    [item] = ingest(project, item_payload(output="not json"))
    assert item.status == "auto_rejected"
    assert item.review_reasons == ["check_failed:valid json"]
    assert item.decided_at is not None
    assert item.final_output is None
    assert item.in_queue is False
    [result] = CheckResult.objects.filter(item=item)
    assert (result.name, result.passed, result.severity) == ("valid json", False, "blocking")
    assert "not valid JSON" in result.message


def test_warning_forces_review_even_in_monitor_mode(db):
    project = make_project(mode="monitor", confidence_threshold=0.5)
    make_rule(
        project, name="mentions dose", kind="must_not_match", pattern="mg", severity="warning"
    )
    [flagged, clean] = ingest(
        project,
        item_payload(output="Take 500 mg.", confidence=0.99),
        item_payload(output="Rest well.", confidence=0.99),
    )
    assert flagged.status == "pending_review"
    assert "check_warning:mentions dose" in flagged.review_reasons
    assert flagged.in_queue is True
    assert clean.status == "auto_approved"


def test_results_are_stored_for_every_rule_and_item(db):
    project = make_project()
    make_rule(project, name="a", kind="min_length", limit=1)
    make_rule(project, name="b", kind="max_length", limit=1000)
    make_rule(project, name="off", kind="max_length", limit=1, enabled=False)
    items = ingest(project, item_payload(), item_payload())
    assert CheckResult.objects.filter(item__in=items).count() == 4
    assert set(CheckResult.objects.values_list("name", flat=True)) == {"a", "b"}


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"kind": "must_match", "pattern": "(unclosed"}, "pattern"),
        ({"kind": "must_match", "pattern": ""}, "pattern"),
        ({"kind": "max_length"}, "limit"),
        ({"kind": "banned_keywords", "keywords": []}, "keywords"),
        ({"kind": "banned_keywords", "keywords": "word"}, "keywords"),
        ({"kind": "json_schema", "json_schema": {"type": "nonsense"}}, "json_schema"),
        ({"kind": "json_schema", "json_schema": None}, "json_schema"),
    ],
)
def test_invalid_rule_config_is_a_form_error(db, fields, error_field):
    rule = CheckRule(project=make_project(), name="bad", **fields)
    with pytest.raises(ValidationError) as excinfo:
        rule.full_clean()
    assert error_field in excinfo.value.message_dict
