"""Small database helpers shared by the runtime's hot paths."""

from __future__ import annotations

import psycopg
from django.db import connection


def lock_then_read(lock_sql: str, lock_params: list, sql: str, params: list) -> list[tuple]:
    """Take advisory locks with ``lock_sql``, then run ``sql`` and return its rows.

    They are two statements, so the read sees whatever committed while the locks were awaited
    (each statement of a READ COMMITTED transaction takes a new snapshot; in one statement it
    would not), sent in one round trip where the driver allows it (psycopg's client-side binding
    cursor, Django's default, sends them as one simple query). Without ``lock_sql``, or on a
    database without advisory locks (SQLite, whose writers are serialised anyway), only the
    read runs.
    """
    with connection.cursor() as cursor:
        if not lock_sql or connection.vendor != "postgresql":
            cursor.execute(sql, params)
        elif isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute(f"{lock_sql}; {sql}", [*lock_params, *params])
            cursor.nextset()
        else:
            cursor.execute(lock_sql, lock_params)
            cursor.execute(sql, params)
        return cursor.fetchall()
