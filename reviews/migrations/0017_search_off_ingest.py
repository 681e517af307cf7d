"""Full-text search off the ingest path: the search document gets a table of its own.

The GIN expression index on ``reviews_reviewitem`` (migration 0012) cost
PostgreSQL as much CPU per ingested item as the whole app path. The document
now lives in ``reviews_itemsearch`` (GIN index on it), built by a job from the
queue ``reviews_searchpending``. PostgreSQL only: the backfill (one
``INSERT ... SELECT``, before the index so it is built once), the GIN index and
the drop of the old index; the SQLite demo keeps searching the item's columns.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

from reviews.models.items import SearchDocument

OLD_INDEX = "item_search_document_idx"
INDEX = django.contrib.postgres.indexes.GinIndex(fields=["document"], name="item_search_gin_idx")


def backfill_and_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "INSERT INTO reviews_itemsearch (item_id, document) "  # noqa: S608
        f"SELECT i.id, {SearchDocument.sql('i.')} FROM reviews_reviewitem i"
    )
    schema_editor.add_index(apps.get_model("reviews", "ItemSearch"), INDEX)
    schema_editor.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def restore_old_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} ON reviews_reviewitem "
        f"USING gin (({SearchDocument.sql()}))"
    )
    schema_editor.remove_index(apps.get_model("reviews", "ItemSearch"), INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0016_merge_20261202_1234"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchPending",
            fields=[
                (
                    "item_id",
                    models.BigIntegerField(
                        help_text="The item to (re)index.", primary_key=True, serialize=False
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="ItemSearch",
            fields=[
                (
                    "item",
                    models.OneToOneField(
                        help_text="The item this document is built from.",
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_entry",
                        serialize=False,
                        to="reviews.reviewitem",
                    ),
                ),
                (
                    "document",
                    django.contrib.postgres.search.SearchVectorField(
                        help_text="to_tsvector of the item's notes, prompt and output."
                    ),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="itemsearch", index=INDEX)],
            database_operations=[
                migrations.RunPython(backfill_and_index, restore_old_index, elidable=False)
            ],
        ),
    ]
