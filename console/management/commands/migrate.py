"""``manage.py migrate`` runs as the tables' owner when ``MIGRATION_DATABASE_URL`` is set.

The application itself connects with ``DATABASE_URL`` as a role that owns nothing, so it cannot
disable the audit trail's triggers; only migrations need the owner. After migrating, the
application role's grants are brought up to date (new tables, the audit tables' limits).
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections


class Command(MigrateCommand):
    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        if "owner" in connections.databases:
            parser.set_defaults(database="owner")

    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if options["database"] != "owner" or connections["owner"].vendor != "postgresql":
            return
        # The roles are the users of the two connections: the owner migrates, the app runs.
        owner = connections["owner"].settings_dict["USER"]
        app = connections["default"].settings_dict["USER"]
        if app and app != owner:
            call_command(
                "database_roles", database="owner", owner_role=owner, app_role=app, verbosity=options["verbosity"]
            )
