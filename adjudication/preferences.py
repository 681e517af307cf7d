"""The case page of a comparison: the candidates and the two reviewers' preferences.

Candidates are numbered in the submitted order (1-4) here, whatever order each
reviewer saw; each side says what its reviewer chose, why, and the order it was
shown in. Model names stay hidden while the case is open, as on the review page.
"""

from dataclasses import dataclass, field

from adjudication.models import AdjudicationCase
from reviews.models import Candidate, Preference, Review, Verdict


@dataclass
class CaseCandidate:
    number: int
    candidate: Candidate
    chosen_by: list[str] = field(default_factory=list)

    @property
    def own_value(self) -> str:
        """The senior's own-preference radio value for this candidate."""
        return f"winner:{self.candidate.pk}"


@dataclass
class PreferenceSide:
    label: str
    review: Review
    choice: str
    shown: str


@dataclass
class CasePreferences:
    candidates: list[CaseCandidate]
    sides: list[PreferenceSide]
    final: str
    reveal_models: bool


def _choice(review: Review, numbers: dict[int, int]) -> str:
    if review.preference == Preference.WINNER and review.winner_id in numbers:
        corrected = ", corrected" if review.verdict == Verdict.CORRECT else ""
        return f"Candidate {numbers[review.winner_id]} is best{corrected}"
    return Preference(review.preference).label if review.preference else review.verdict


def case_preferences(case: AdjudicationCase) -> CasePreferences:
    """What the case page shows of a comparison case (one query for the candidates)."""
    item = case.item
    rows = [
        CaseCandidate(number=index + 1, candidate=candidate)
        for index, candidate in enumerate(Candidate.objects.filter(item=item).order_by("position"))
    ]
    numbers = {row.candidate.pk: row.number for row in rows}
    sides = []
    for label, review in (("A", case.review_a), ("B", case.review_b)):
        if review is None:
            continue
        for row in rows:
            if row.candidate.pk == review.winner_id:
                row.chosen_by.append(label)
        shown = ", ".join(str(numbers[pk]) for pk in review.candidate_order if pk in numbers)
        sides.append(
            PreferenceSide(label=label, review=review, choice=_choice(review, numbers), shown=shown)
        )
    final = ""
    if not case.is_open and item.final_preference:
        if item.final_candidate_id in numbers:
            final = f"Candidate {numbers[item.final_candidate_id]} is best"
        else:
            final = Preference(item.final_preference).label
    return CasePreferences(
        candidates=rows, sides=sides, final=final, reveal_models=not case.is_open
    )
