"""The platform's one Cohen's kappa, and the two reports that use it."""

from fractions import Fraction

import pytest

from adjudication.metrics import Pair, agreement_summary
from reviews.judge.calibration import Agreement
from reviews.stats import cohen_kappa, cohen_kappa_table


def test_every_rating_in_one_category_is_undefined():
    # p_o = 1 and p_e = 1: the formula is 0/0.
    assert cohen_kappa([("approve", "approve")] * 10) is None
    assert cohen_kappa_table({(True, True): 7, (True, False): 0}) is None


def test_perfect_agreement_over_two_categories_is_one():
    assert cohen_kappa([("approve", "approve")] * 3 + [("reject", "reject")]) == 1.0


def test_no_pairs_is_undefined():
    assert cohen_kappa([]) is None
    assert cohen_kappa_table({(True, True): 0, (False, False): 0}) is None


def test_table_and_pairs_give_the_same_kappa():
    # 50 items, p_o = .7, p_e = .5: kappa = .4 exactly in integers: (50*35 - 1250) / (2500 - 1250).
    table = {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}
    pairs = [cell for cell, count in table.items() for _ in range(count)]
    assert cohen_kappa_table(table) == cohen_kappa(pairs) == pytest.approx(0.4)


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        cohen_kappa_table({(True, True): -1})


def _calibration(tp: int, fp: int, fn: int, tn: int) -> Agreement:
    agreement = Agreement()
    for label, flagged, human, n in (
        ("flag", True, "reject", tp),
        ("flag", True, "approve", fp),
        ("pass", False, "reject", fn),
        ("pass", False, "approve", tn),
    ):
        agreement.add(label=label, flagged=flagged, human=human, n=n)
    return agreement


def _adjudication_kappa(tp: int, fp: int, fn: int, tn: int) -> float | None:
    verdicts = {True: "reject", False: "approve"}
    pairs = [
        Pair(1, verdicts[a], 1.0, 2, verdicts[b], 1.0, agree=a == b)
        for (a, b), count in {
            (True, True): tp,
            (True, False): fp,
            (False, True): fn,
            (False, False): tn,
        }.items()
        for _ in range(count)
    ]
    summary = agreement_summary(pairs=pairs, reviews_in_period=[], decided_cases=[], usernames={})
    return summary["summary"]["kappa"]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ((10, 0, 0, 0), None),  # everyone flags / rejects everything: undefined
        ((0, 0, 0, 10), None),  # nobody flags / rejects anything: undefined
        ((3, 0, 0, 2), 1.0),  # perfect agreement over both categories
        ((3, 1, 2, 4), float(Fraction(2, 5))),  # p_o = .7, p_e = .5
        ((0, 5, 5, 0), -1.0),
    ],
)
def test_adjudication_and_calibration_agree(cells, expected):
    """Reviewer-reviewer and judge-human agreement are the same kappa, edge cases included."""
    calibration = _calibration(*cells).kappa
    adjudication = _adjudication_kappa(*cells)
    if expected is None:
        assert calibration is None and adjudication is None
    else:
        assert calibration == pytest.approx(expected)
        assert adjudication == pytest.approx(expected, abs=1e-4)
