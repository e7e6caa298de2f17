"""A delivery failed for want of the provider's answer says so in its own field (`unanswered`),
not only in the words of its failure reason: the rows that failed that way so far are the ones
whose reason begins "unknown outcome"."""
from django.db import migrations, models


def mark_unanswered(apps, schema_editor):
    Delivery = apps.get_model("nurture", "Delivery")
    Delivery.objects.filter(status="failed", failure_reason__startswith="unknown outcome").update(unanswered=True)


class Migration(migrations.Migration):
    dependencies = [
        ("nurture", "0001_schema"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="unanswered",
            field=models.BooleanField(
                default=False, db_default=False,
                help_text="Failed because the provider never answered: it may have the email."
            ),
        ),
        migrations.RunPython(mark_unanswered, migrations.RunPython.noop),
    ]
