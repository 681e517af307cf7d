"""Agreement on rubric scores, per criterion: Krippendorff's alpha and percent agreement.

Alpha comes from the ``krippendorff`` package at the criterion's level of
measurement (nominal, ordinal, interval or ratio), over the reviews written in
the period: each item is a unit, each reviewer a coder, missing scores allowed.
Percent agreement is the share of items scored by two or more reviewers on
which all their scores are equal. Both are null when no item has two scores;
alpha is also null when every score is the same value (no expected
disagreement: alpha is undefined, as kappa is).
"""

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

import krippendorff
import numpy as np

from reviews.models import CriterionKind, Project, Review, RubricCriterion
from reviews.services.rubric import rubric_numeric, rubric_of


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def _value_domain(criterion: RubricCriterion) -> list[float]:
    if criterion.kind == CriterionKind.SCALE:
        return [float(v) for v in range(criterion.scale_min, criterion.scale_max + 1)]
    if criterion.kind == CriterionKind.CATEGORICAL:
        return [float(i) for i in range(len(criterion.options))]
    return [0.0, 1.0]


def krippendorff_alpha(
    *, units: dict[Any, dict[Any, float]], level: str, value_domain: list[float]
) -> float | None:
    """Alpha of ``units`` (unit -> coder -> value) at ``level``; None when undefined."""
    coders = sorted({coder for scores in units.values() for coder in scores}, key=str)
    if len(coders) < 2:
        return None
    unit_keys = sorted(units, key=str)
    data = np.full((len(coders), len(unit_keys)), np.nan)
    row = {coder: i for i, coder in enumerate(coders)}
    for column, unit in enumerate(unit_keys):
        for coder, value in units[unit].items():
            data[row[coder], column] = value
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = krippendorff.alpha(
                reliability_data=data, level_of_measurement=level, value_domain=value_domain
            )
    except ValueError:  # no pairable values, or a single value in the domain
        return None
    return None if math.isnan(alpha) else float(alpha)


def criterion_figures(
    *, criterion: RubricCriterion, units: dict[Any, dict[Any, float]]
) -> dict[str, Any]:
    """The figures of one criterion from its scores (unit -> coder -> numeric value)."""
    paired = [scores for scores in units.values() if len(scores) >= 2]
    agreed = sum(1 for scores in paired if len(set(scores.values())) == 1)
    level = criterion.measurement_level
    return {
        "key": criterion.key,
        "label": criterion.label,
        "kind": criterion.kind,
        "level": level,
        "items": len(paired),
        "scores": sum(len(scores) for scores in units.values()),
        "percent_agreement": round(100.0 * agreed / len(paired), 2) if paired else None,
        "alpha": _round(
            krippendorff_alpha(units=units, level=level, value_domain=_value_domain(criterion))
        ),
    }


def rubric_agreement(*, project: Project, start: datetime, end: datetime) -> list[dict]:
    """Per criterion of ``project``: alpha and percent agreement of the period's scores.

    Two queries whatever the volume: the criteria, and the scores of the
    trusted reviews of real items (controls aside) written in [start, end).
    """
    criteria = rubric_of(project)
    if not criteria:
        return []
    rows = (
        Review.objects.trusted()
        .filter(
            item__project=project,
            item__is_control=False,
            created_at__gte=start,
            created_at__lt=end,
        )
        .exclude(rubric_scores={})
        .values_list("item_id", "reviewer_id", "rubric_scores")
    )
    units: dict[str, dict[int, dict[int, float]]] = {c.key: defaultdict(dict) for c in criteria}
    by_key = {criterion.key: criterion for criterion in criteria}
    for item_id, reviewer_id, scores in rows:
        for key, value in (scores or {}).items():
            criterion = by_key.get(key)
            number = rubric_numeric(criterion, value) if criterion else None
            if number is not None:
                units[key][item_id][reviewer_id] = number
    return [criterion_figures(criterion=c, units=units[c.key]) for c in criteria]
