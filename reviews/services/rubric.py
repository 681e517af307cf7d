"""Rubric scores: the one place a review's scores per criterion are parsed and judged.

A project's criteria (``RubricCriterion``) are scored on every review: a scale
takes an integer between its bounds, a categorical criterion one of its
options, a boolean one yes or no. Scores are stored on the review
(``Review.rubric_scores``, key -> value) and travel with its history.
"""

from typing import Any

from reviews.models import CriterionKind, Project, RubricCriterion
from reviews.precompiled import Precompiled

FIELD_PREFIX = "rubric_"
TRUE_WORDS = frozenset({"1", "true", "yes", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "n"})


# Read on every review page and submit: compiled once per thread (reviews.precompiled).
_CRITERIA_OF_PROJECT = Precompiled(
    lambda project_id: RubricCriterion.objects.filter(project_id=project_id).order_by(
        "order", "id"
    ),
    sample=[-7005],
)


def rubric_of(project: Project) -> list[RubricCriterion]:
    """The project's criteria in page order (one query)."""
    return _CRITERIA_OF_PROJECT(project.pk)


def field_name(criterion: RubricCriterion) -> str:
    """The form field (and error key) of ``criterion``: ``rubric_<key>``."""
    return f"{FIELD_PREFIX}{criterion.key}"


def _parse(criterion: RubricCriterion, raw: Any) -> tuple[Any, str]:
    """(value, "") for an acceptable score, (None, message) otherwise."""
    name = f"'{criterion.label}' ({criterion.key})"
    if criterion.kind == CriterionKind.SCALE:
        if isinstance(raw, bool):
            return None, f"{name} takes a whole number."
        try:
            value = int(str(raw).strip())
        except ValueError:
            return None, f"{name} takes a whole number."
        if not criterion.scale_min <= value <= criterion.scale_max:
            return None, (
                f"{name} is scored {criterion.scale_min} to {criterion.scale_max}; {value} is "
                "out of range."
            )
        return value, ""
    if criterion.kind == CriterionKind.CATEGORICAL:
        value = str(raw).strip()
        if value not in criterion.options:
            return None, f"{name} takes one of: {', '.join(criterion.options)}."
        return value, ""
    word = str(raw).strip().lower()
    if isinstance(raw, bool):
        return raw, ""
    if word in TRUE_WORDS:
        return True, ""
    if word in FALSE_WORDS:
        return False, ""
    return None, f"{name} takes yes or no."


def rubric_scores_validate(
    *, criteria: list[RubricCriterion], raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(scores by criterion key, messages by ``rubric_<key>`` field) for ``raw`` input.

    ``raw`` maps criterion keys to what the reviewer entered (empty or None:
    not scored). A required criterion left unscored, an out-of-range score or
    an unknown option is refused, each message naming the criterion; an
    unknown key is refused under ``rubric_scores``. Optional criteria left
    unscored are absent from the scores.
    """
    known = {criterion.key for criterion in criteria}
    errors: dict[str, list[str]] = {}
    unknown = sorted(key for key in raw if key not in known)
    if unknown:
        errors["rubric_scores"] = [f"Not a criterion of this project: {', '.join(unknown)}."]
    scores: dict[str, Any] = {}
    for criterion in criteria:
        value = raw.get(criterion.key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if criterion.required:
                errors[field_name(criterion)] = [
                    f"Score '{criterion.label}' ({criterion.key}): it is required."
                ]
            continue
        parsed, message = _parse(criterion, value)
        if message:
            errors[field_name(criterion)] = [message]
        else:
            scores[criterion.key] = parsed
    return scores, errors


def rubric_numeric(criterion: RubricCriterion, value: Any) -> float | None:
    """A stored score as the number Krippendorff's alpha compares (None if unusable).

    Scales are their score, categorical options their position in the list,
    booleans 0 and 1.
    """
    if criterion.kind == CriterionKind.SCALE:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if criterion.kind == CriterionKind.CATEGORICAL:
        return float(criterion.options.index(value)) if value in criterion.options else None
    return float(value) if isinstance(value, bool) else None


def rubric_text(scores: dict[str, Any] | None) -> str:
    """Scores as one line for people, by key: ``factuality 4 · safe yes`` ("" without any)."""
    return " · ".join(
        f"{key} {'yes' if value is True else 'no' if value is False else value}"
        for key, value in sorted((scores or {}).items())
    )
