from django.db import migrations


class Migration(migrations.Migration):
    """Joins the audit trail, governance and exception-case migrations, written side by side."""

    dependencies = [
        ("review", "0001_audit"),
        ("review", "0001_cases"),
        ("review", "0001_governance"),
    ]

    operations = []
