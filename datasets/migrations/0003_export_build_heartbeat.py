from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0002_format_from_registry"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetexport",
            name="build_id",
            field=models.CharField(
                blank=True,
                help_text="The current build attempt (set when it starts).",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="datasetexport",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Last sign of life of the running build; the sweep fails a silent one.",
                null=True,
            ),
        ),
    ]
