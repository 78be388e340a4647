"""The stop button's fence: a pause and an agent's turn never overlap.

An agent's turn reads "is anything paused?" in phase C and then lands its effects; a pause that
committed between that read and the turn's commit would be confirmed to the admin while the turn
still lands. So both sides take a transaction-scoped PostgreSQL advisory lock on the pause's
*gate*: a turn holds the gates that could stop it in shared mode (many turns at once), a pause
takes its gate exclusively. A pause therefore waits for every turn already past its check to
commit, and every turn that checks later waits for the pause to commit and then sees it — once
``agents_pause`` returns, nothing an agent started lands; a turn in flight is discarded exactly
as after a takeover.

Gates: ``all``, ``definition:<id>``, ``agent:<id>``, ``action-types`` (every action-type pause
shares one). A turn takes its gates in sorted order and a pause takes one, so they never
deadlock. On SQLite (the embedded demo) writers are serialised by the database itself and this
is a no-op.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from django.db import connection

from .db import lock_then_read

# The first key of every advisory lock this module takes ("HO" for Handoff), so the locks never
# collide with another use of advisory locks in the same database.
LOCK_CLASS = 0x484F


def _key(gate: str) -> int:
    return zlib.crc32(gate.encode()) & 0x7FFFFFFF


def gates_for_turn(*, definition_id: int, agent_id: int | None) -> list[str]:
    gates = ["all", f"definition:{definition_id}", "action-types"]
    if agent_id is not None:
        gates.append(f"agent:{agent_id}")
    return sorted(gates)


def hold_shared_and_read(gates: Iterable[str], sql: str, params: list) -> list[tuple]:
    """Hold the gates in shared mode until the current transaction ends (an agent's turn), then
    run ``sql`` and return its rows: two statements sent in one round trip where the driver
    allows it. The read is a statement of its own, so it sees whatever committed while the gates
    were awaited (each statement of a READ COMMITTED transaction takes a new snapshot); read in
    the same statement as the locks, it would not. No gates: only the read."""
    return lock_then_read(*shared_statement(gates), sql, params)


def shared_statement(gates: Iterable[str]) -> tuple[str, list[int]]:
    """The statement that holds ``gates`` in shared mode until the transaction ends, for a caller
    that sends it with others in one round trip; ("", []) for none, or off PostgreSQL."""
    if connection.vendor != "postgresql":
        return "", []
    return _statement(sorted(set(gates)), "pg_advisory_xact_lock_shared")


def hold_exclusive(gate: str) -> None:
    """Close the gate until the current transaction ends (a pause): waits for every turn past
    its check to commit."""
    _lock([gate], "pg_advisory_xact_lock")


def _lock(gates: list[str], function: str) -> None:
    """Take the gates in one statement (one round trip), left to right in the given order."""
    if connection.vendor != "postgresql" or not gates:
        return
    sql, params = _statement(gates, function)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _statement(gates: list[str], function: str) -> tuple[str, list[int]]:
    """The one statement that takes ``gates`` with ``function``, left to right ("" for none)."""
    if not gates:
        return "", []
    calls = ", ".join(f"{function}(%s, %s)" for _ in gates)
    return f"SELECT {calls}", [value for gate in gates for value in (LOCK_CLASS, _key(gate))]
