"""Judge calibration: does the judge's flag agree with the final human decision?

Positive class: the judge flagged the item (label flag or fail, or a score
under the threshold), against a human who rejected or corrected it. Judge
errors are not opinions: they are counted apart and left out of the metrics.
Everything comes from one grouped query, so the report costs the same for ten
items or ten million.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from reviews.models import JudgeLabel, JudgeVerdict, Project, Verdict
from reviews.stats import cohen_kappa_table

JUDGE_LABELS = [JudgeLabel.PASS, JudgeLabel.FLAG, JudgeLabel.FAIL, JudgeLabel.ERROR]
HUMAN_VERDICTS = [Verdict.APPROVE, Verdict.CORRECT, Verdict.REJECT]
HUMAN_POSITIVE = frozenset({Verdict.CORRECT, Verdict.REJECT})


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class Agreement:
    """Counts for one slice: a confusion matrix and the binary flag metrics."""

    matrix: dict[str, dict[str, int]] = field(
        default_factory=lambda: {label: dict.fromkeys(HUMAN_VERDICTS, 0) for label in JUDGE_LABELS}
    )
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    errors: int = 0

    def add(self, *, label: str, flagged: bool, human: str, n: int) -> None:
        self.matrix[label][human] += n
        if label == JudgeLabel.ERROR:
            self.errors += n
            return
        positive = human in HUMAN_POSITIVE
        if flagged and positive:
            self.tp += n
        elif flagged:
            self.fp += n
        elif positive:
            self.fn += n
        else:
            self.tn += n

    @property
    def compared(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def decided(self) -> int:
        return self.compared + self.errors

    @property
    def precision(self) -> float | None:
        """Of the items the judge flagged, the share humans rejected or corrected."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        """Of the items humans rejected or corrected, the share the judge flagged."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    @property
    def accuracy(self) -> float | None:
        """Share of items where flag / no flag matched reject-or-correct / approve."""
        return _ratio(self.tp + self.tn, self.compared)

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa of the binary decision (judge flagged, human rejected or corrected)."""
        return cohen_kappa_table(
            {
                (True, True): self.tp,
                (True, False): self.fp,
                (False, True): self.fn,
                (False, False): self.tn,
            }
        )

    def matrix_rows(self) -> list[tuple[str, list[int], int]]:
        return [
            (
                label,
                [self.matrix[label][h] for h in HUMAN_VERDICTS],
                sum(self.matrix[label].values()),
            )
            for label in JUDGE_LABELS
        ]


@dataclass
class SliceRow:
    judge_model: str
    rubric_version: int
    model_version: str
    agreement: Agreement


@dataclass
class CalibrationReport:
    project: Project
    overall: Agreement
    slices: list[SliceRow]
    judged: int
    """Verdicts of the project in the filter, decided by a human or not."""
    judge_models: list[str]
    model_versions: list[str]


def calibration_report(
    *, project: Project, judge_model: str = "", model_version: str = ""
) -> CalibrationReport:
    """Agreement of the judge with final human decisions on ``project``, overall and per
    judge model, rubric version and the reviewed model's version."""
    # Controls are never final: their verdicts have no human decision to agree with.
    verdicts = JudgeVerdict.objects.filter(item__project=project, item__is_control=False)
    judge_models = sorted(set(verdicts.values_list("model", flat=True).distinct()))
    model_versions = sorted(
        set(verdicts.values_list("item__model_version", flat=True).distinct()), reverse=True
    )
    if judge_model:
        verdicts = verdicts.filter(model=judge_model)
    if model_version:
        verdicts = verdicts.filter(item__model_version=model_version)
    rows = (
        verdicts.values(
            "model",
            "rubric_version",
            "item__model_version",
            "label",
            "flagged",
            "item__final_verdict",
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    judged = verdicts.count()
    overall = Agreement()
    slices: dict[tuple[str, int, str], Agreement] = defaultdict(Agreement)
    for row in rows:
        human = row["item__final_verdict"]
        if human not in HUMAN_VERDICTS:
            continue  # not decided by a human (yet): nothing to compare with
        values = {"label": row["label"], "flagged": row["flagged"], "human": human, "n": row["n"]}
        overall.add(**values)
        slices[(row["model"], row["rubric_version"], row["item__model_version"])].add(**values)
    return CalibrationReport(
        project=project,
        overall=overall,
        slices=[
            SliceRow(judge_model=m, rubric_version=r, model_version=v, agreement=a)
            for (m, r, v), a in sorted(
                slices.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2])
            )
        ],
        judged=judged,
        judge_models=judge_models,
        model_versions=model_versions,
    )
