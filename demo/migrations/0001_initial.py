"""The demo's simulated core bank, moved here from the journeys app.

Its tables keep their names (``journeys_core*``). A database created before the move already has
them, with rows: the state operations adopt them and nothing is created. A database without them
(a fresh install with the demo) gets them created. An install without the demo app never runs
this migration, so it never has these tables.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MODELS = ["CoreCustomer", "CoreAccount", "CoreCard", "CoreTransaction", "CoreCase", "CoreVerificationCode", "CoreEffect"]


def create_missing_tables(apps, schema_editor):
    existing = set(schema_editor.connection.introspection.table_names())
    for name in MODELS:
        model = apps.get_model("demo", name)
        if model._meta.db_table not in existing:
            schema_editor.create_model(model)


def drop_tables(apps, schema_editor):
    existing = set(schema_editor.connection.introspection.table_names())
    for name in reversed(MODELS):
        model = apps.get_model("demo", name)
        if model._meta.db_table in existing:
            schema_editor.delete_model(model)


def move_content_types(apps, schema_editor):
    """Permissions and admin history that pointed at journeys.core* follow the models."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for name in MODELS:
        model = name.lower()
        if not ContentType.objects.filter(app_label="demo", model=model).exists():
            ContentType.objects.filter(app_label="journeys", model=model).update(app_label="demo")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("journeys", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.CreateModel(
                name='CoreAccount',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('number', models.CharField(max_length=20, unique=True)),
                    ('balance', models.DecimalField(decimal_places=2, default=0, max_digits=12)),
                ],
                options={
                    'db_table': 'journeys_coreaccount',
                    'ordering': ['number'],
                },
            ),
            migrations.CreateModel(
                name='CoreCustomer',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('ref', models.CharField(max_length=40, unique=True)),
                    ('name', models.CharField(max_length=120)),
                    ('date_of_birth', models.DateField()),
                    ('phone', models.CharField(max_length=30)),
                    ('email', models.EmailField(max_length=254)),
                    ('address', models.CharField(max_length=200)),
                    ('premium', models.BooleanField(default=False)),
                    ('hardship', models.BooleanField(default=False)),
                    ('customer_since', models.DateField()),
                    ('phone_changed_at', models.DateTimeField(blank=True, null=True)),
                    ('email_changed_at', models.DateTimeField(blank=True, null=True)),
                    ('address_changed_at', models.DateTimeField(blank=True, null=True)),
                ],
                options={
                    'db_table': 'journeys_corecustomer',
                    'ordering': ['ref'],
                },
            ),
            migrations.CreateModel(
                name='CoreEffect',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('idempotency_key', models.CharField(max_length=80, unique=True)),
                    ('action', models.CharField(max_length=60)),
                    ('params', models.JSONField(default=dict)),
                    ('result', models.JSONField(default=dict)),
                    ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ],
                options={
                    'db_table': 'journeys_coreeffect',
                    'ordering': ['id'],
                },
            ),
            migrations.AddField(
                model_name='coreaccount',
                name='customer',
                field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='accounts', to='demo.corecustomer'),
            ),
            migrations.CreateModel(
                name='CoreCard',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('token', models.CharField(max_length=30, unique=True)),
                    ('number', models.CharField(max_length=19, unique=True)),
                    ('status', models.CharField(choices=[('active', 'Active'), ('blocked', 'Blocked'), ('ordered', 'Ordered')], default='active', max_length=10)),
                    ('blocked_reason', models.CharField(blank=True, max_length=60)),
                    ('issued_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='cards', to='demo.coreaccount')),
                ],
                options={
                    'db_table': 'journeys_corecard',
                    'ordering': ['number'],
                },
            ),
            migrations.CreateModel(
                name='CoreTransaction',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('at', models.DateTimeField()),
                    ('kind', models.CharField(choices=[('purchase', 'Card purchase'), ('fee', 'Fee'), ('refund', 'Refund')], max_length=10)),
                    ('description', models.CharField(max_length=120)),
                    ('amount', models.DecimalField(decimal_places=2, max_digits=12)),
                    ('fee_kind', models.CharField(blank=True, max_length=30)),
                    ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='transactions', to='demo.coreaccount')),
                    ('card', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='transactions', to='demo.corecard')),
                ],
                options={
                    'db_table': 'journeys_coretransaction',
                    'ordering': ['-at'],
                },
            ),
            migrations.CreateModel(
                name='CoreCase',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('kind', models.CharField(max_length=30)),
                    ('amount', models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True)),
                    ('status', models.CharField(default='open', max_length=20)),
                    ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='cases', to='demo.corecustomer')),
                    ('transaction', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='demo.coretransaction')),
                ],
                options={
                    'db_table': 'journeys_corecase',
                },
            ),
            migrations.CreateModel(
                name='CoreVerificationCode',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('code', models.CharField(max_length=8)),
                    ('channel', models.CharField(max_length=10)),
                    ('sent_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='codes', to='demo.corecustomer')),
                ],
                options={
                    'db_table': 'journeys_coreverificationcode',
                    'ordering': ['-sent_at', '-id'],
                },
            ),
            migrations.AddIndex(
                model_name='coretransaction',
                index=models.Index(fields=['account', 'kind', 'at'], name='core_txn_account_kind'),
            ),
            ],
        ),
        migrations.RunPython(create_missing_tables, drop_tables),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
    ]
