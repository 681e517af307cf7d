import difflib
import random

import pytest

from reviews.diffing import (
    CONTEXT_WORDS,
    MAX_WORD_CELLS,
    DiffOp,
    PathChange,
    Triplet,
    correction_diff,
    correction_triplets,
    json_in_layout_of,
    json_path,
    json_same_value,
    pretty_json,
    word_diff,
)


def test_word_diff_rejoins_into_both_texts():
    old = "The dose is 4 g per day, split."
    new = "The usual dose is 3 g per day, split into doses."
    ops = word_diff(old, new)
    assert "".join(op.text for op in ops if op.op != "insert") == old
    assert "".join(op.text for op in ops if op.op != "delete") == new
    assert DiffOp("delete", "4") in ops and DiffOp("insert", "3") in ops


def test_word_diff_of_equal_texts_is_one_equal_run():
    assert word_diff("same text", "same text") == [DiffOp("equal", "same text")]


def test_text_triplets_address_spans_of_the_original():
    assert correction_triplets("Paris is in Italy.", "Paris is in France.") == [
        Triplet("chars 12-17", "Italy", "France")
    ]
    assert correction_triplets("Take it.", "Take it now.") == [Triplet("chars 7-7", "", " now")]


def test_json_triplets_use_json_pointers_and_escape_keys():
    old = '{"a/b": 1, "x~y": {"k": true}, "gone": null, "list": [1, 2]}'
    new = '{"a/b": 2, "x~y": {"k": true}, "list": [1], "new": "v"}'
    assert correction_triplets(old, new) == [
        Triplet("/a~1b", "1", "2"),
        Triplet("/gone", "null", ""),
        Triplet("/list/1", "2", ""),
        Triplet("/new", "", '"v"'),
    ]


def test_json_type_change_is_one_triplet():
    assert correction_triplets('{"n": 1}', '{"n": true}') == [Triplet("/n", "1", "true")]
    assert correction_triplets('{"n": {"a": 1}}', '{"n": [1]}') == [
        Triplet("/n", '{"a": 1}', "[1]")
    ]


def test_json_on_one_side_only_falls_back_to_text():
    assert correction_triplets('{"a": 1}', "not json")[0].attribute.startswith("chars ")


def test_pretty_json_only_for_objects_and_arrays():
    assert pretty_json('{"b":1,"a":[1,2]}') == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}'
    assert pretty_json("42") is None
    assert pretty_json("{not json") is None


def long_text(words: int) -> str:
    return " ".join(f"w{i}" for i in range(words))


def test_correction_diff_of_a_long_text_shows_only_the_changed_hunk():
    old = long_text(5000)
    new = old.replace("w4990", "CHANGED")
    diff = correction_diff(old, new)
    (hunk,) = diff.hunks
    assert diff.paths is None and diff.size == 1
    assert [op.op for op in hunk.ops] == ["equal", "delete", "insert", "equal"]
    assert hunk.ops[0].text.split() == [f"w{i}" for i in range(4978, 4990)]
    assert (hunk.ops[1].text, hunk.ops[2].text) == ("w4990", "CHANGED")
    assert hunk.ops[3].text.split() == [f"w{i}" for i in range(4991, 5000)]
    assert hunk.skipped_before == 4978
    assert diff.skipped_after == 0
    assert (diff.added_words, diff.removed_words) == (1, 1)


def test_changes_far_apart_are_separate_hunks_and_near_ones_share_one():
    old = long_text(200)
    far = old.replace("w10 ", "A ").replace("w150 ", "B ")
    assert correction_diff(old, far).size == 2
    assert correction_diff(old, far).hunks[1].skipped_before == 150 - 10 - 1 - 2 * CONTEXT_WORDS
    near = old.replace("w10 ", "A ").replace("w20 ", "B ")
    assert correction_diff(old, near).size == 1
    assert correction_diff(old, far).skipped_after == 200 - 151 - CONTEXT_WORDS


def test_correction_diff_of_equal_texts_has_no_hunks():
    diff = correction_diff("same text", "same text")
    assert not diff.changed and diff.hunks == []


def test_json_correction_diff_is_by_path():
    old = '{"price": 1299.0, "items": [{"name": "a"}], "odd key": 1, "gone": true}'
    new = '{"price": 999.99, "items": [{"name": "b"}], "odd key": 1, "new": null}'
    assert correction_diff(old, new).paths == [
        PathChange("$.price", "1299.0", "999.99"),
        PathChange("$.items[0].name", '"a"', '"b"'),
        PathChange("$.gone", "true", ""),
        PathChange("$.new", "", "null"),
    ]
    assert [change.kind for change in correction_diff(old, new).paths] == [
        "changed",
        "changed",
        "removed",
        "added",
    ]
    assert json_path(("odd key", 0)) == '$["odd key"][0]'


def test_a_json_correction_is_stored_in_the_outputs_layout():
    pretty = '{\n  "price": 999.99,\n  "tags": [\n    "x"\n  ]\n}'
    assert json_in_layout_of('{"price":1299.0,"tags":["x"]}', pretty) == (
        '{"price":999.99,"tags":["x"]}'
    )
    assert json_in_layout_of('{"price": 1299.0, "tags": ["x"]}', pretty) == (
        '{"price": 999.99, "tags": ["x"]}'
    )
    assert json_in_layout_of('{\n    "price": 1}', pretty) == pretty
    assert json_in_layout_of('{"a": 1}', "not json any more") == "not json any more"
    assert json_same_value('{"a":1}', '{\n  "a": 1\n}')
    assert not json_same_value('{"a":1}', '{"a": 1.0}')


def _long_text(words: int, separator: str) -> list[str]:
    rng = random.Random(7)
    vocabulary = ["the", "of", "a", "dose", "patient", "mg", "daily"]
    vocabulary += [f"term{index}" for index in range(3000)]
    return [rng.choice(vocabulary) for _ in range(words)]


@pytest.fixture
def matcher_sizes(monkeypatch):
    """The token pairs of every SequenceMatcher the diff builds (its cost is their product)."""
    sizes = []
    real = difflib.SequenceMatcher

    def recording(isjunk=None, a="", b="", autojunk=True):
        sizes.append(len(a) * len(b))
        return real(isjunk, a, b, autojunk)

    monkeypatch.setattr(difflib, "SequenceMatcher", recording)
    return sizes


@pytest.mark.parametrize("separator", [" ", ". ", "\n"])
def test_a_5000_word_diff_is_exact_and_never_matches_the_whole_texts(separator, matcher_sizes):
    # Matching all ~10,000 tokens of each side at once took 5 s for one changed word.
    words = _long_text(5000, separator)
    edited = list(words)
    edited[100], edited[4900] = "earlychange", "latechange"
    old, new = separator.join(words), separator.join(edited)

    diff = correction_diff(old, new)
    triplets = correction_triplets(old, new)

    assert (diff.size, diff.added_words, diff.removed_words) == (2, 2, 2)
    assert [op.text for hunk in diff.hunks for op in hunk.ops if op.op == "insert"] == [
        "earlychange",
        "latechange",
    ]
    assert [triplet.new_value for triplet in triplets] == ["earlychange", "latechange"]
    assert matcher_sizes and max(matcher_sizes) <= MAX_WORD_CELLS


def test_a_long_diff_rejoins_into_both_texts():
    words = _long_text(3000, " ")
    edited = [word.upper() if index % 97 == 0 else word for index, word in enumerate(words)]
    edited.insert(1500, "inserted")
    old, new = " ".join(words), " ".join(edited)
    ops = word_diff(old, new)
    assert "".join(op.text for op in ops if op.op != "insert") == old
    assert "".join(op.text for op in ops if op.op != "delete") == new
    assert sum(1 for op in ops if op.op == "insert") == len(range(0, 3000, 97)) + 1
