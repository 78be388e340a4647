"""``manage.py database_roles``: the two PostgreSQL roles production runs with.

- the **owner** role owns every table; migrations (and archiving) run as it, through
  ``MIGRATION_DATABASE_URL``;
- the **app** role is what ``DATABASE_URL`` logs in as: it owns nothing, is no superuser, may
  read and write the ordinary tables, but only SELECT and INSERT the audit tables (only SELECT
  the archive rows). So it cannot UPDATE, DELETE or TRUNCATE the trail, cannot disable its
  triggers (that needs the owner) and cannot set ``session_replication_role`` (superuser only).

Once, as a database superuser: ``manage.py database_roles --create --owner-password … --app-password …``
(creates both roles and hands every existing table to the owner). After every migration the
grants are re-applied (``manage.py migrate`` does it when ``MIGRATION_DATABASE_URL`` is set);
``--print`` shows the SQL instead of running it.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from psycopg import sql

AUDIT_TABLES = ["review_auditrecord", "review_auditcheckpoint"]
ARCHIVE_TABLE = "review_auditarchive"


def create_statements(*, owner: str, app: str, owner_password: str, app_password: str, database: str) -> list[Any]:
    statements: list[Any] = []
    for role, password in ((owner, owner_password), (app, app_password)):
        statements.append(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN "
                "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION; "
                "END IF; END $$"
            ).format(name=sql.Literal(role), role=sql.Identifier(role))
        )
        if password:
            statements.append(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    statements += [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
            sql.Identifier(database), sql.Identifier(owner), sql.Identifier(app)
        ),
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner)),
        # Every existing table (and its sequence) changes hands to the owner role.
        sql.SQL(
            "DO $$ DECLARE t record; BEGIN "
            "FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner <> {owner} LOOP "
            "EXECUTE format('ALTER TABLE public.%I OWNER TO %I', t.tablename, {owner}); END LOOP; END $$"
        ).format(owner=sql.Literal(owner)),
        sql.SQL(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'review_audit_append_only') THEN "
            "EXECUTE format('ALTER FUNCTION review_audit_append_only() OWNER TO %I', {owner}); END IF; END $$"
        ).format(owner=sql.Literal(owner)),
    ]
    return statements


def grant_statements(*, owner: str, app: str) -> list[Any]:
    o, a = sql.Identifier(owner), sql.Identifier(app)
    statements: list[Any] = [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(a),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(o, a),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
            o, a
        ),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(a),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(a),
        sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {}").format(a),
    ]
    # Before the first migration the audit tables do not exist yet; migrate re-runs this.
    for table, allowed in [*((t, "SELECT, INSERT") for t in AUDIT_TABLES), (ARCHIVE_TABLE, "SELECT")]:
        statements.append(
            sql.SQL(
                "DO $$ BEGIN IF to_regclass({regclass}) IS NOT NULL THEN "
                "EXECUTE format('REVOKE ALL ON %I FROM %I', {table}, {app}); "
                "EXECUTE format('GRANT {allowed} ON %I TO %I', {table}, {app}); END IF; END $$"
            ).format(
                regclass=sql.Literal(f"public.{table}"),
                table=sql.Literal(table),
                app=sql.Literal(app),
                allowed=sql.SQL(allowed),
            )
        )
    return statements


class Command(BaseCommand):
    help = "Create the owner and application database roles, or re-apply the application role's grants."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner-role", default=os.environ.get("HANDOFF_OWNER_ROLE", "handoff_owner"))
        parser.add_argument("--app-role", default=os.environ.get("HANDOFF_APP_ROLE", "handoff_app"))
        parser.add_argument("--create", action="store_true", help="create both roles (run as a superuser)")
        parser.add_argument("--owner-password", default=os.environ.get("HANDOFF_OWNER_PASSWORD", ""))
        parser.add_argument("--app-password", default=os.environ.get("HANDOFF_APP_PASSWORD", ""))
        parser.add_argument("--print", action="store_true", dest="print_only", help="print the SQL only")
        parser.add_argument("--database", default="default", help="the connection to run it on")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are a PostgreSQL matter; the embedded demo has none.")
        owner, app = options["owner_role"], options["app_role"]
        statements: list[Any] = []
        if options["create"]:
            statements += create_statements(
                owner=owner,
                app=app,
                owner_password=options["owner_password"],
                app_password=options["app_password"],
                database=connection.settings_dict["NAME"],
            )
        statements += grant_statements(owner=owner, app=app)
        with connection.cursor() as cursor:
            raw = cursor.connection
            if options["print_only"]:
                for statement in statements:
                    self.stdout.write(statement.as_string(raw) + ";")
                return
            for statement in statements:
                cursor.execute(statement)
        if options["verbosity"]:
            self.stdout.write(f"Role {app} may only SELECT and INSERT on the audit tables; {owner} owns the tables.")
