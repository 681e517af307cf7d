"""The rules a human decision on an item must follow, wherever it is made.

A reviewer's review in the workspace and a senior's own decision on an
adjudication case are the same kind of decision, so one function judges both:
each caller only names its form fields (adjudication calls the corrected
output ``final_output`` and takes the senior's rationale as the note).
"""

from django.conf import settings

from reviews.diffing import json_in_layout_of, json_same_value
from reviews.models import Project, Severity, Verdict

OTHER_REASON = "other"


def reason_label(code: str) -> str:
    """How a reason code reads to people: ``factual_error`` -> "Factual error".

    Codes stay the stable values of the API, webhooks and exports; pages show
    this label (the code remains in the page for tooltips and keys).
    """
    text = " ".join(str(code or "").replace("_", " ").replace("-", " ").split())
    return text[:1].upper() + text[1:]


def decision_validate(
    *,
    project: Project,
    original: str,
    verdict: str,
    corrected_output: str | None,
    reason_code: str,
    severity: str,
    note: str,
) -> dict[str, list[str]]:
    """Messages per field for a decision the rules refuse; empty when it is acceptable.

    The keys are ``verdict``, ``corrected_output``, ``reason_code``,
    ``severity`` and ``note``.

    The verdict is approve, reject or correct. Reject and correct need a reason
    from the project's reason codes and a severity; the reason "other" needs a
    note. A correction needs a project that allows corrections and a corrected
    output, not blank, not longer than ``HITL_MAX_TEXT_CHARS`` and different
    from ``original`` (an unchanged output is an approval). Approve needs
    nothing else: its reason and severity are ignored.
    """
    if verdict not in Verdict.values:
        return {"verdict": ["Choose approve, reject or correct."]}
    errors: dict[str, list[str]] = {}
    if verdict == Verdict.CORRECT:
        if not project.allow_corrections:
            errors["verdict"] = ["This project does not accept corrections."]
        elif corrected_output is None or not corrected_output.strip():
            errors["corrected_output"] = ["Enter the corrected output."]
        elif corrected_output == original or json_same_value(original, corrected_output):
            errors["corrected_output"] = [
                "The correction is identical to the model output; approve it instead."
            ]
        elif len(corrected_output) > settings.HITL_MAX_TEXT_CHARS:
            errors["corrected_output"] = [f"At most {settings.HITL_MAX_TEXT_CHARS} characters."]
    if verdict in (Verdict.REJECT, Verdict.CORRECT):
        if not reason_code:
            errors["reason_code"] = ["Choose a reason."]
        elif reason_code not in (project.reason_codes or []):
            errors["reason_code"] = [f"'{reason_code}' is not one of this project's reasons."]
        if severity not in Severity.values:
            errors["severity"] = ["Choose a severity."]
        if reason_code == OTHER_REASON and not note.strip():
            errors["note"] = ["Describe the problem when the reason is 'other'."]
    return errors


def corrected_output_stored(*, original: str, corrected_output: str) -> str:
    """The text a correction is stored (and released, and exported) as.

    A JSON correction of a JSON output is laid out like the output: reviewers
    edit JSON pretty-printed, the model's layout stays (``json_in_layout_of``).
    Any other correction is stored exactly as written.
    """
    return json_in_layout_of(original, corrected_output)
