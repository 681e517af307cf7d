"""The manifest's item list and the export's item rows, chunk after chunk, both splits."""

import json

import pytest

from datasets.services import export_build, export_create
from reviews.models import ReviewItem
from tests.datasets.factories import reviewed


@pytest.mark.parametrize("validation_ratio", [0.0, 0.5])
def test_items_are_listed_once_with_their_history_or_null(
    project, export_dir, settings, validation_ratio
):
    settings.HITL_EXPORT_CHUNK_SIZE = 2
    items = [reviewed(project, prompt=f"Question {n}?") for n in range(5)]
    # An item whose history rows are gone (kept before history existed, or pruned).
    ReviewItem.history.filter(id=items[2].pk).delete()
    export = export_create(
        format="sft_chat",
        projects=[project],
        filters={},
        validation_ratio=validation_ratio,
        seed=5,
        enqueue=False,
    )
    export = export_build(export_id=export.pk)

    text = (export_dir / export.manifest_name).read_text()
    manifest = json.loads(text)
    latest = {
        item.pk: ReviewItem.history.filter(id=item.pk).order_by("-history_id").first()
        for item in items
    }
    expected = [
        [item.pk, None if latest[item.pk] is None else latest[item.pk].history_id] for item in items
    ]
    assert [entry[:2] for entry in manifest["items"]] == expected
    assert expected[2][1] is None and "null" in text
    rows = export.entries.order_by("item_id").values_list("item_id", "history_id", "split")
    assert [list(row) for row in rows] == manifest["items"]
    assert {split for _item, _history, split in rows} <= {"train", "validation"}
    assert sum(export.counts["rows"].values()) == 5
