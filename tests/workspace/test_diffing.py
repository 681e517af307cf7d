from reviews.diffing import DiffOp, Triplet, correction_triplets, pretty_json, word_diff


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
