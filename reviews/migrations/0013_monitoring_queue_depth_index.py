"""The dashboard's queue depth from the index alone (PostgreSQL only, as 0008).

Counting the waiting items per project with ``item_queue_idx`` fetched every
waiting row from the heap (for ``is_audit``); this partial index answers the
count, the audit count and the oldest waiting item index-only.
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS monitoring_queue_depth_idx ON reviews_reviewitem "
            "(project_id, is_audit, created_at) WHERE in_queue"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS monitoring_queue_depth_idx")


class Migration(migrations.Migration):
    dependencies = [("reviews", "0012_monitoring_rollups")]

    operations = [migrations.RunPython(create, drop)]
