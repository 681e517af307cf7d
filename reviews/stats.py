"""Agreement statistics shared by adjudication and the judge's calibration.

One Cohen's kappa for the whole platform, so reviewer-reviewer agreement and
judge-human agreement cannot disagree on an edge case again, and one Fleiss'
kappa for many raters. Pure functions over plain values; exact arithmetic, so
the degenerate case is found by equality rather than by a float that happens
to round to 1.
"""

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from fractions import Fraction


def cohen_kappa_table(table: Mapping[tuple[Hashable, Hashable], int]) -> float | None:
    """Cohen's kappa of two raters from a confusion table ``{(rating_1, rating_2): count}``.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed share of agreeing
    pairs and p_e = sum over categories of (share of rater 1) x (share of
    rater 2). Undefined, so ``None``:

    - no pairs (nothing to measure);
    - p_e = 1, which happens only when both raters put every item in the same
      single category: the formula is 0/0 and there is no variation for
      agreement beyond chance to be measured on. Shown as "—" / null.

    Perfect agreement over more than one category is 1.0.
    """
    first: Counter[Hashable] = Counter()
    second: Counter[Hashable] = Counter()
    n = agreed = 0
    for (a, b), count in table.items():
        if count < 0:
            raise ValueError("counts must not be negative")
        first[a] += count
        second[b] += count
        n += count
        if a == b:
            agreed += count
    if n == 0:
        return None
    # Scaled by n^2: p_o = agreed / n, p_e = chance / n^2.
    chance = sum(first[c] * second[c] for c in first.keys() & second.keys())
    if chance == n * n:
        return None
    return (n * agreed - chance) / (n * n - chance)


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa over ``(rating_1, rating_2)`` pairs; see ``cohen_kappa_table``."""
    return cohen_kappa_table(Counter(pairs))


def fleiss_kappa(subjects: Iterable[Mapping[Hashable, int]]) -> float | None:
    """Fleiss' kappa of many raters from ``{category: raters who chose it}`` per subject.

    Fleiss, J. L. (1971), "Measuring nominal scale agreement among many raters":
    with n_i the ratings of subject i, P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))
    is its agreement, P-bar their mean, p_j the share of all ratings in category
    j and P-bar_e = sum_j p_j^2; kappa = (P-bar - P-bar_e) / (1 - P-bar_e). With
    the same number of raters for every subject this is Fleiss's formula; a
    subject with fewer than two ratings says nothing of agreement and is left
    out. Undefined, so ``None``: no subject with two ratings, or P-bar_e = 1
    (every rating in one category), as for Cohen's kappa. Exact fractions.
    """
    agreement = Fraction(0)
    subjects_rated = 0
    totals: Counter[Hashable] = Counter()
    ratings = 0
    for counts in subjects:
        if any(count < 0 for count in counts.values()):
            raise ValueError("counts must not be negative")
        n = sum(counts.values())
        if n < 2:
            continue
        subjects_rated += 1
        agreement += Fraction(sum(c * (c - 1) for c in counts.values()), n * (n - 1))
        totals.update(counts)
        ratings += n
    if not subjects_rated:
        return None
    observed = agreement / subjects_rated
    chance = sum(Fraction(count, ratings) ** 2 for count in totals.values())
    if chance == 1:
        return None
    return float((observed - chance) / (1 - chance))
