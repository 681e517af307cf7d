"""Cohen's kappa against tables computed by hand."""

from fractions import Fraction

import pytest

from adjudication.metrics import cohen_kappa


def table(**cells: int) -> list[tuple[str, str]]:
    """Expand a confusion table, e.g. approve_reject=5, into rating pairs."""
    pairs = []
    for key, count in cells.items():
        first, second = key.split("_")
        pairs += [(first, second)] * count
    return pairs


def test_perfect_agreement_over_three_categories_is_one():
    # p_o = 1, p_e = .4*.4 + .3*.3 + .3*.3 = .34, kappa = (1 - .34) / (1 - .34) = 1
    pairs = table(approve_approve=4, reject_reject=3, correct_correct=3)
    assert cohen_kappa(pairs) == pytest.approx(1.0)


def test_chance_agreement_is_zero():
    # Each rater says approve half the time, independently: p_o = .5, p_e = .5.
    pairs = table(approve_approve=25, approve_reject=25, reject_approve=25, reject_reject=25)
    assert cohen_kappa(pairs) == pytest.approx(0.0)


def test_total_disagreement_is_minus_one():
    # p_o = 0, p_e = .5*.5 + .5*.5 = .5, kappa = (0 - .5) / .5 = -1
    pairs = table(approve_reject=5, reject_approve=5)
    assert cohen_kappa(pairs) == pytest.approx(-1.0)


def test_worse_than_chance_is_negative():
    # p_o = 2/10, p_e = .5, kappa = (.2 - .5) / .5 = -.6
    pairs = table(approve_approve=1, approve_reject=4, reject_approve=4, reject_reject=1)
    assert cohen_kappa(pairs) == pytest.approx(-0.6)


def test_textbook_two_by_two():
    # 50 items: p_o = 35/50 = .7; rater 1 yes 25/50, rater 2 yes 30/50:
    # p_e = .5*.6 + .5*.4 = .5, kappa = (.7 - .5) / .5 = .4
    pairs = table(approve_approve=20, approve_reject=5, reject_approve=10, reject_reject=15)
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_three_categories_by_hand():
    # n = 40, agreements 10 + 8 + 12 = 30; rows 15/10/15, columns 13/11/16.
    # kappa = (40*30 - (15*13 + 10*11 + 15*16)) / (40*40 - 545) = 655 / 1055 = 131/211
    pairs = table(
        approve_approve=10,
        approve_reject=2,
        approve_correct=3,
        reject_approve=1,
        reject_reject=8,
        reject_correct=1,
        correct_approve=2,
        correct_reject=1,
        correct_correct=12,
    )
    assert cohen_kappa(pairs) == pytest.approx(float(Fraction(131, 211)))


def test_both_raters_one_category_only_is_undefined():
    # p_o = 1 and p_e = 1: the formula is 0/0; undefined, shown as "—" / null.
    assert cohen_kappa(table(approve_approve=10)) is None


def test_one_rater_one_category_only_is_zero():
    # Rater 1 always approves, rater 2 approves 8 of 10: p_o = .8, p_e = 1*.8 = .8.
    pairs = table(approve_approve=8, approve_reject=2)
    assert cohen_kappa(pairs) == pytest.approx(0.0)


def test_no_pairs_is_undefined():
    assert cohen_kappa([]) is None
