"""Indexes for the monitoring dashboard's grouped queries (PostgreSQL only).

Database-only: the dashboard reads ``reviews_reviewitem`` (a wide table: prompts
and outputs) by project and decision time, and joins reviews to items for their
project and model version. These narrow indexes let PostgreSQL answer from the
index instead of scanning every item. SQLite (the demo) does without.
"""

from django.db import migrations

CREATE = [
    "CREATE INDEX IF NOT EXISTS monitoring_item_decided_idx ON reviews_reviewitem "
    "(project_id, decided_at) INCLUDE (status, final_verdict, model_version) "
    "WHERE decided_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS monitoring_item_scope_idx ON reviews_reviewitem "
    "(project_id, id) INCLUDE (model_version)",
    "CREATE INDEX IF NOT EXISTS monitoring_review_time_idx ON reviews_review "
    "(created_at) INCLUDE (item_id, verdict, is_audit, reviewer_id)",
]
DROP = [
    "DROP INDEX IF EXISTS monitoring_item_decided_idx",
    "DROP INDEX IF EXISTS monitoring_item_scope_idx",
    "DROP INDEX IF EXISTS monitoring_review_time_idx",
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in CREATE:
            schema_editor.execute(sql)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("reviews", "0007_roles")]

    operations = [migrations.RunPython(create, drop)]
