"""When two reviews agree: verdicts, text corrections and JSON corrections."""

import pytest

from adjudication.agreement import json_equal, outputs_equal, reviews_agree

TEXT = "The maximum adult dose is 4 g per day."
JSON_DOC = '{"drug": "paracetamol", "max_g": 4, "tags": ["adult", "oral"]}'


def agree(verdict_a, verdict_b, output_a=None, output_b=None, original=TEXT) -> bool:
    return reviews_agree(
        original=original,
        verdict_a=verdict_a,
        output_a=output_a,
        verdict_b=verdict_b,
        output_b=output_b,
    )


@pytest.mark.parametrize("verdict", ["approve", "reject"])
def test_same_verdict_without_correction_agrees(verdict):
    assert agree(verdict, verdict)


@pytest.mark.parametrize(
    ("a", "b"), [("approve", "reject"), ("approve", "correct"), ("reject", "correct")]
)
def test_different_verdicts_disagree(a, b):
    assert not agree(a, b, output_a="x", output_b="x")


def test_text_corrections_equal_after_whitespace_normalisation_agree():
    assert agree(
        "correct",
        "correct",
        "The maximum adult dose is 3 g per day.",
        "  The maximum\tadult dose is 3 g\n\nper day. ",
    )


def test_text_corrections_differing_in_a_word_disagree():
    assert not agree(
        "correct",
        "correct",
        "The maximum adult dose is 3 g per day.",
        "The maximum adult dose is 2 g per day.",
    )


def test_text_comparison_keeps_case_and_punctuation():
    assert not outputs_equal(original=TEXT, left="Dose: 3 g.", right="dose: 3 g")


def test_json_corrections_equal_as_parsed_json_agree():
    left = '{"drug": "paracetamol", "max_g": 3, "tags": ["adult", "oral"]}'
    right = '{\n  "tags": ["adult","oral"],\n  "max_g": 3.0,\n  "drug": "paracetamol"\n}'
    assert agree("correct", "correct", left, right, original=JSON_DOC)


def test_json_corrections_with_different_values_disagree():
    left = '{"drug": "paracetamol", "max_g": 3}'
    right = '{"drug": "paracetamol", "max_g": 2}'
    assert not agree("correct", "correct", left, right, original=JSON_DOC)


def test_json_array_order_matters():
    assert not outputs_equal(original=JSON_DOC, left='{"a": [1, 2]}', right='{"a": [2, 1]}')


def test_json_true_is_not_one():
    assert not outputs_equal(original=JSON_DOC, left='{"a": true}', right='{"a": 1}')
    assert not json_equal(False, 0)
    assert json_equal(None, None)


def test_json_correction_that_does_not_parse_agrees_with_nothing():
    assert not agree("correct", "correct", "{not json", "{not json", original=JSON_DOC)


def test_text_output_compares_json_looking_corrections_as_text():
    # The original is prose, so corrections are text: key order is a difference.
    assert not outputs_equal(original=TEXT, left='{"a": 1, "b": 2}', right='{"b": 2, "a": 1}')
