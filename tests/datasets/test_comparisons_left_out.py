"""Comparisons stay out of the one-output export formats (the preference formats read them)."""

from datasets.services import export_build, export_create
from reviews.models import ItemStatus
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import assignment_claim_next
from tests.datasets.factories import reviewed
from tests.factories import comparison_payload, ingest


def test_a_decided_comparison_is_not_exported_as_a_single_output(project, reviewer, export_dir):
    single = reviewed(project)
    (comparison,) = ingest(project, comparison_payload(2))
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == comparison.pk
    winner = comparison.candidates.order_by("position").first()
    preference_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=PreferenceInput(
            preference="winner",
            winner_id=winner.pk,
            corrected_output="A corrected winner.",
            reason_code="tone",
            severity="minor",
        ),
    )
    comparison.refresh_from_db()
    assert comparison.status == ItemStatus.CORRECTED
    for fmt in ("sft_chat", "dpo_pairs"):
        export = export_create(format=fmt, projects=[project], filters={}, enqueue=False)
        export = export_build(export_id=export.pk)
        exported = set(export.entries.values_list("item_id", flat=True))
        assert comparison.pk not in exported, fmt
    assert single.pk in set(
        export_build(
            export_id=export_create(
                format="sft_chat", projects=[project], filters={}, enqueue=False
            ).pk
        ).entries.values_list("item_id", flat=True)
    )
