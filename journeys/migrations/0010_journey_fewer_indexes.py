"""Fewer indexes on the journey row, and room for HOT updates.

A turn updates its journey twice; an update that cannot stay on the row's page (HOT) writes an
entry in every index. Two of the fifteen indexes served nothing: the definition's own index
(``journey_definition_status``, ``journey_definition_updated`` and ``journey_live_counts`` all
lead with the definition) and the ``varchar_pattern_ops`` twin of the customer reference (the
console's customer search is a substring match, which no b-tree serves). The table keeps a
fifth of each page free, so an update that changes no indexed column (taking a turn's lease)
can stay on its page.
"""

import django.db.models.deletion
from django.db import migrations, models


def _fillfactor(value: int):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE journeys_journey SET (fillfactor = {value})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0009_event_review_claim_kinds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="journey",
            name="customer_ref",
            field=models.CharField(max_length=40),
        ),
        migrations.AlterField(
            model_name="journey",
            name="definition",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="journeys",
                to="journeys.journeydefinition",
            ),
        ),
        migrations.AddIndex(
            model_name="journey",
            index=models.Index(fields=["customer_ref"], name="journey_customer_ref"),
        ),
        migrations.RunPython(_fillfactor(80), _fillfactor(100)),
    ]
