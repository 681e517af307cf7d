from django.db import migrations, models


class Migration(migrations.Migration):
    """Change reasons carry seniors' rationales: text, not a 100-char field."""

    dependencies = [
        ("adjudication", "0001_cases"),
    ]

    operations = [
        migrations.AlterField(
            model_name=model_name,
            name="history_change_reason",
            field=models.TextField(null=True),
        )
        for model_name in ("historicaladjudicationcase", "historicalcaseclaim")
    ]
