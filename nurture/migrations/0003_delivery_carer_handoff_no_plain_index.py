"""Delivery.carer_handoff loses its plain index: the partial unique index delivery_unique_carer_step
(carer_handoff, step) already serves every lookup by handoff, and the plain one put an entry for
every row, own copies (null) included, into every write.

Only the index is dropped: Django's own AlterField would also drop the foreign key and add it back,
which re-checks every delivery under a lock that stops writes."""
import django.db.models.deletion
from django.db import migrations, models

INDEX = "nurture_delivery_carer_handoff_id_07bbd679"  # the name Django gave it in 0001


class Migration(migrations.Migration):

    dependencies = [
        ('nurture', '0002_delivery_unanswered'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='delivery',
                    name='carer_handoff',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='nurture.carerhandoff'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "nurture_delivery" ("carer_handoff_id")',
                ),
            ],
        ),
    ]
