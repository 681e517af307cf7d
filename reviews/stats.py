"""Agreement statistics shared by adjudication and the judge's calibration.

One Cohen's kappa for the whole platform, so reviewer-reviewer agreement and
judge-human agreement cannot disagree on an edge case again. Pure functions
over plain values; exact integer arithmetic, so the degenerate case is found
by equality rather than by a float that happens to round to 1.
"""

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping


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
