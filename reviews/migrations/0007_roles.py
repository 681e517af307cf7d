"""Create the Reviewer, Senior reviewer and Project admin groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from reviews.roles import GROUP_RULES, roles_sync_permissions


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them now
    # so the groups can be given theirs on a fresh database too.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync_permissions(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


def drop_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUP_RULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0006_monitoring_dashboard"),
        ("adjudication", "0002_history_reason_text"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, drop_groups)]
