from django.db import migrations


class Migration(migrations.Migration):
    """Joins the audit trail and the governance migrations, written side by side."""

    dependencies = [
        ("review", "0001_audit"),
        ("review", "0001_governance"),
    ]

    operations = []
