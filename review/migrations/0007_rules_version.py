"""The rules version: one row whose token every write to a permission scope or a cumulative
limit changes (and writes again if it was deleted), moved by triggers so that no writer can
forget it (``review.policy`` keeps the
enabled rules per process and trusts them only while the token is the one they were read under).
"""

from django.db import migrations, models

RULE_TABLES = ("review_permissionscope", "review_cumulativelimit")

POSTGRESQL = [
    """
    CREATE FUNCTION review_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO review_rulesversion (id, token) VALUES (1, gen_random_uuid()::text)
        ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION review_rules_changed()"
        for table in RULE_TABLES
    ),
]
POSTGRESQL_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS {table}_rules_changed ON {table}" for table in RULE_TABLES),
    "DROP FUNCTION IF EXISTS review_rules_changed()",
]

SQLITE = [
    f"CREATE TRIGGER {table}_rules_{what.lower()} AFTER {what} ON {table} BEGIN "
    "INSERT INTO review_rulesversion (id, token) VALUES (1, lower(hex(randomblob(16)))) "
    "ON CONFLICT (id) DO UPDATE SET token = excluded.token; END"
    for table in RULE_TABLES
    for what in ("INSERT", "UPDATE", "DELETE")
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {table}_rules_{what.lower()}"
    for table in RULE_TABLES
    for what in ("INSERT", "UPDATE", "DELETE")
]


def triggers(apps, schema_editor):
    statements = POSTGRESQL if schema_editor.connection.vendor == "postgresql" else SQLITE
    for statement in statements:
        schema_editor.execute(statement)
    versions = apps.get_model("review", "RulesVersion").objects.using(schema_editor.connection.alias)
    versions.update_or_create(pk=1, defaults={"token": "installed"})


def drop_triggers(apps, schema_editor):
    statements = POSTGRESQL_REVERSE if schema_editor.connection.vendor == "postgresql" else SQLITE_REVERSE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0006_organisation_grant_change"),
    ]

    operations = [
        migrations.CreateModel(
            name="RulesVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token", models.CharField(default="", max_length=64)),
            ],
        ),
        migrations.RunPython(triggers, drop_triggers),
    ]
