"""Small database helpers shared by the runtime's hot paths."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model
from psycopg.pq import TransactionStatus


def transaction_marker() -> Callable[[], None] | None:
    """A do-nothing callback queued to run when the open transaction commits, or None outside
    one. While it is still queued (``queued_markers``), the transaction — or the savepoint —
    that queued it has neither ended nor been rolled back: Django drops the callbacks queued
    inside a savepoint that rolls back."""
    if not connection.in_atomic_block:
        return None

    def marker() -> None:
        """Runs at commit and does nothing: its presence in the queue is what counts."""

    transaction.on_commit(marker)
    return marker


def queued_markers() -> set[int]:
    """The ids of the callbacks queued on the open transaction (empty outside one)."""
    if not connection.in_atomic_block:
        return set()
    return {id(func) for _, func, _ in connection.run_on_commit}


def still_queued(marker: Callable[[], None] | None) -> bool:
    """Whether the transaction (or savepoint) that queued ``marker`` is still open."""
    return marker is not None and id(marker) in queued_markers()


def run_statements(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """Run the statements in order and return each one's rows. Each is a statement of its own,
    so each sees whatever committed while the ones before it waited for locks (a statement of a
    READ COMMITTED transaction takes a new snapshot). On PostgreSQL they go in one round trip,
    in psycopg's pipeline mode: each statement is still bound, and prepared once it has run a
    few times, as every other statement of the connection (``DATABASE_PREPARED_STATEMENTS``),
    and the ``BEGIN`` of a transaction that starts with them travels with them. Elsewhere they
    run one after the other."""
    if len(statements) > 1 and connection.vendor == "postgresql":
        return _pipelined(statements)
    with connection.cursor() as cursor:
        rows = []
        for sql, params in statements:
            cursor.execute(sql, params)
            rows.append(cursor.fetchall())
        return rows


def _pipelined(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    # A transaction that starts with these statements sends its BEGIN with them.
    with_begin = not raw.autocommit and raw.info.transaction_status == TransactionStatus.IDLE
    started = time.monotonic()
    cursors = []
    try:
        # An error of the database surfaces when the pipeline is synced, at the end of the
        # block: wrapped as Django wraps every other (``OperationalError`` and the rest).
        with connection.wrap_database_errors, raw.pipeline():
            for sql, params in statements:
                cursor = connection.make_cursor(connection.create_cursor())
                cursors.append(cursor)
                cursor.execute(sql, params)
        rows = [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()
    if connection.queries_logged:
        # Logged as what it is, one round trip (``CaptureQueriesContext`` counts it once), with
        # whether the transaction's BEGIN went with it.
        connection.queries_log.append(
            {
                "sql": "; ".join(connection.ops.compose_sql(sql, params) for sql, params in statements),
                "time": f"{time.monotonic() - started:.3f}",
                "pipelined": True,
                "with_begin": with_begin,
            }
        )
    return rows


def lock_then_read(lock_sql: str, lock_params: list, sql: str, params: list) -> list[tuple]:
    """Take advisory locks with ``lock_sql``, then run ``sql`` and return its rows, in one round
    trip where the driver allows it (``run_statements``). Without ``lock_sql``, or on a database
    without advisory locks (SQLite, whose writers are serialised anyway), only the read runs."""
    if not lock_sql or connection.vendor != "postgresql":
        return run_statements([(sql, params)])[0]
    return run_statements([(lock_sql, lock_params), (sql, params)])[1]


# INSERT statements composed once per (model, number of rows), for the hot paths that write a
# few rows of one model at a time (a phase's events, their audit records). More rows go in
# several statements of at most this many, so the statements kept stay few and no statement
# nears PostgreSQL's limit on parameters.
_INSERTS: dict[tuple[type[Model], int, str], tuple[str, list[Field]]] = {}
INSERT_BATCH = 100


def _insert_statement(model: type[Model], rows: int, unless_taken: str = "") -> tuple[str, list[Field]]:
    key = (model, rows, unless_taken)
    entry = _INSERTS.get(key)
    if entry is None:
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        if any(f.generated or f.has_db_default() for f in fields):
            raise ValueError(f"{model.__name__} has database-computed columns; use bulk_create")
        quote = connection.ops.quote_name
        one = f"({', '.join(['%s'] * len(fields))})"
        conflict = f"ON CONFLICT ({quote(meta.get_field(unless_taken).column)}) DO NOTHING " if unless_taken else ""
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES {', '.join([one] * rows)} {conflict}RETURNING {quote(meta.pk.column)}"
        )
        entry = _INSERTS[key] = (sql, fields)
    return entry


def _inserted(obj: Model, pk: Any) -> None:
    setattr(obj, obj._meta.pk.attname, pk)
    obj._state.adding = False
    obj._state.db = connection.alias


def insert_unless_taken(obj: Model, unique: str) -> bool:
    """INSERT the unsaved ``obj`` unless a row already holds its value of the unique field
    ``unique`` (``ON CONFLICT … DO NOTHING``; a transaction still holding that value is waited
    for), by a statement composed once per model and field, its values prepared as
    ``insert_rows`` prepares them. True, with ``obj`` given its id, when it was inserted; False
    when the value was taken. PostgreSQL and SQLite alike."""
    sql, fields = _insert_statement(type(obj), 1, unique)
    with connection.cursor() as cursor:
        cursor.execute(sql, [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields])
        row = cursor.fetchone()
    if row is None:
        return False
    _inserted(obj, row[0])
    return True


def insert_rows(objs: Sequence[Model]) -> None:
    """INSERT unsaved instances of one model and give them their ids, as ``bulk_create`` would,
    in one statement per ``INSERT_BATCH`` rows, composed once per model and number of rows: each
    value goes through its field's ``pre_save`` and ``get_db_prep_save``, as the ORM does. No
    model signals are sent (``bulk_create`` sends none either). Elsewhere than PostgreSQL (whose
    ``RETURNING`` gives the ids in the order of the rows) it is ``bulk_create``."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    for start in range(0, len(objs), INSERT_BATCH):
        batch = objs[start : start + INSERT_BATCH]
        sql, fields = _insert_statement(model, len(batch))
        values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in batch for field in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            ids = cursor.fetchall()
        for obj, (value,) in zip(batch, ids, strict=True):
            _inserted(obj, value)


# Conditional UPDATEs of one row composed once per (model, fields set, condition), for the
# lifecycles' transitions (every status change of a journey or a proposal goes through one).
_UPDATES: dict[tuple, tuple[str, list[Field], Field, Field]] = {}


def update_if(model: type[Model], pk: Any, values: dict[str, Any], *, field: str, among: Sequence[Any]) -> int:
    """``model.objects.filter(pk=pk, <field>__in=among).update(**values)``, returning the number
    of rows updated, by a statement composed once per (model, fields, condition). Values pass
    through their fields' ``get_db_prep_save`` as the ORM's ``update`` does (a related object
    stands for its id); an expression, or a database other than PostgreSQL, takes the ORM."""
    if connection.vendor != "postgresql" or any(hasattr(v, "resolve_expression") for v in values.values()):
        return model._default_manager.filter(pk=pk, **{f"{field}__in": among}).update(**values)
    key = (model, tuple(values), field, len(among))
    entry = _UPDATES.get(key)
    if entry is None:
        meta = model._meta
        fields = [meta.get_field(name) for name in values]
        condition = meta.get_field(field)
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
            f"WHERE {quote(meta.pk.column)} = %s AND {quote(condition.column)} IN ({', '.join(['%s'] * len(among))})"
        )
        entry = _UPDATES[key] = (sql, fields, meta.pk, condition)
    sql, fields, pk_field, condition = entry
    params = [
        f.get_db_prep_save(v.pk if isinstance(v, Model) else v, connection)
        for f, v in zip(fields, values.values(), strict=True)
    ]
    params.append(pk_field.get_db_prep_value(pk, connection))
    params += [condition.get_db_prep_value(v, connection) for v in among]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- reads in the round trip that locks a journey for an agent's turn ------------------------
#
# A turn's locked phase starts by locking the journey row; what it then reads from small tables
# (the pauses, the rules token, the webhook subscriptions, the action types it proposes) can go
# in the same round trip as further statements of one pipeline (``services.lock_journey_then``).
# Parts of Handoff above the journeys register what they want read there; each read is a
# statement of its own, so it sees whatever committed while the lock was awaited.


@dataclass(frozen=True)
class OpeningRead:
    """A read sent with the lock of an agent's turn: ``statements(journey_id, turn)`` gives the
    statements to send, in order, as (sql, params) — or None when that turn does not need them;
    ``keep(journey_id, rows, stash)`` is given the rows of the last one and keeps what it needs
    for the rest of the phase in ``stash``, that of the phase's ``events.together`` block. ``turn`` is the agent's
    turn, or None when the phase applies none (approved proposals carried out, a failure
    recorded)."""

    statements: Callable[[int, Any], list[tuple[str, list]] | None]
    keep: Callable[[int, list[tuple], dict[str, Any]], None]


_OPENING_READS: list[OpeningRead] = []


def register_opening_read(read: OpeningRead) -> None:
    _OPENING_READS.append(read)


def opening_reads(
    journey_id: int, turn: Any
) -> list[tuple[list[tuple[str, list]], Callable[[int, list[tuple], dict[str, Any]], None]]]:
    """The registered reads the phase needs, each as (its statements, its keep), on PostgreSQL
    (elsewhere none: each part then reads what it needs when it needs it)."""
    if connection.vendor != "postgresql":
        return []
    wanted = []
    for read in _OPENING_READS:
        statements = read.statements(journey_id, turn)
        if statements:
            wanted.append((statements, read.keep))
    return wanted


# What Django's own query would apply to each value read of a model's row: the backend's
# converters (SQLite's text dates, for one) and the field's (JSON), per column that has any.
Converting = list[tuple[int, Any, list]]


def converting(fields: Sequence[Field], alias: str) -> Converting:
    """The converters of ``fields`` read under table alias ``alias``, with each one's index."""
    found = []
    for index, field in enumerate(fields):
        column = field.get_col(alias)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((index, column, converters))
    return found


def loaded(model: type[Model], attnames: list[str], converters: Converting, values: Sequence[Any]) -> Model:
    """An instance of ``model`` from the values of its columns, as the ORM would load it."""
    values = list(values)
    for index, column, convert_all in converters:
        for convert in convert_all:
            values[index] = convert(values[index], column, connection)
    return model.from_db(connection.alias, attnames, values)


# Plain SELECTs of every column of a model, composed once per model.
_SELECTS: dict[type[Model], tuple[str, list[str], Converting]] = {}


def select_all_sql(model: type[Model]) -> str:
    """``SELECT <every concrete column> FROM <table> t``: add a WHERE on alias ``t``."""
    return _select_entry(model)[0]


def _select_entry(model: type[Model]) -> tuple[str, list[str], Converting]:
    entry = _SELECTS.get(model)
    if entry is None:
        quote = connection.ops.quote_name
        fields = list(model._meta.concrete_fields)
        sql = f"SELECT {', '.join(f't.{quote(f.column)}' for f in fields)} FROM {quote(model._meta.db_table)} t"
        entry = _SELECTS[model] = (sql, [f.attname for f in fields], converting(fields, "t"))
    return entry


def instances(model: type[Model], rows: list[tuple]) -> list[Model]:
    """Model instances from rows of ``select_all_sql(model)``, as the ORM would load them."""
    _, attnames, converters = _select_entry(model)
    return [loaded(model, attnames, converters, row) for row in rows]
