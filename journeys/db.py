"""Small database helpers shared by the runtime's hot paths."""

from __future__ import annotations

import psycopg
from django.db import connection


def two_statements(first: str, first_params: list, second: str, second_params: list) -> list[tuple]:
    """Run two statements in one round trip (psycopg's client-side binding cursor, which Django
    uses by default, sends them as one simple query) and return the second's rows; with a driver
    cursor that cannot, one after the other. Either way they are two statements."""

    with connection.cursor() as cursor:
        if isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute(f"{first}; {second}", [*first_params, *second_params])
            cursor.nextset()
        else:
            cursor.execute(first, first_params)
            cursor.execute(second, second_params)
        return cursor.fetchall()
