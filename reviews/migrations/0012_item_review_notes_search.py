"""Full-text search over items: reviewers' notes on the item, and a GIN index.

The index is PostgreSQL's only (the SQLite demo searches with LIKE): an
expression index on ``SearchDocument``, the same expression the item search
filters on, so the planner uses it.
"""

from django.contrib.postgres.indexes import GinIndex
from django.db import migrations, models

from reviews.models.items import SearchDocument

INDEX = GinIndex(SearchDocument(), name="item_search_document_idx")


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("reviews", "ReviewItem"), INDEX)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("reviews", "ReviewItem"), INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0011_payload_hash_orjson"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewitem",
            name="review_notes",
            field=models.TextField(
                blank=True,
                default="",
                editable=False,
                help_text="Reviewers' notes on this item, one a line, for the item search (written by review_submit).",
            ),
        ),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
