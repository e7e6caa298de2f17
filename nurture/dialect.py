"""Where the database vendors differ: the one module that asks which database it is talking to and
writes SQL by hand.

The engine runs on PostgreSQL in production and on SQLite for the local demo. A few hot paths of
the planner go faster with PostgreSQL's own SQL (one JSON document as a single parameter, arrays,
SKIP LOCKED, a commit that does not wait for the disk); each has a plain ORM twin for SQLite.
Table names come from the models' `_meta.db_table`, never written out. The sending ledger's claim
and stamp statements are plain SQL that both vendors take, and stay with the ledger.
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import F, Lookup
from django.db.models.lookups import In

from nurture.models import Delivery, Subscriber


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def skips_locked_rows() -> bool:
    """Rows can be locked with SKIP LOCKED, so several planners never take the same row."""
    return connection.features.has_select_for_update_skip_locked


def commit_without_waiting_for_disk() -> None:
    """PostgreSQL: this transaction's COMMIT returns before its WAL reaches the disk
    (synchronous_commit = off, this transaction only). A database crash can then lose the last
    fraction of a second of planning, whole batches and never part of one: those subscribers are
    simply due again and planned at the next tick, and a send task already enqueued for a lost
    delivery id finds no queued row to claim (or, should the id be reused, a queued row that is
    due now anyway), so the claim still lets each delivery go once. Waiting for the disk on each
    batch's commit was a large part of a planning run. Elsewhere: nothing to do."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def set_transaction_flag(name: str) -> None:
    """PostgreSQL: a setting that lasts until this transaction ends (read by a trigger)."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [name])


HISTORY_FIELDS = ("subscriber_id", "step_id", "status", "article_versions", "queued_at", "sent_at")


# The ids are joined as a table rather than tested with "= ANY(ids)": while the deliveries'
# statistics are stale (a new deployment, a bulk import, a benchmark's fresh tables) PostgreSQL
# scans the table and tests every row against every id, a cost of rows x ids that grew to 12 ms per
# batch of 500 within one planning run of 10k; joined, a stale plan still reads each row once.
HISTORY_SQL = (f"SELECT {', '.join('d.' + name for name in HISTORY_FIELDS)} FROM unnest(%s::bigint[]) AS u(id) "
               f"JOIN {Delivery._meta.db_table} AS d ON d.subscriber_id = u.id")


def delivery_history_rows(subscriber_ids: list[int]) -> list[tuple]:
    """HISTORY_FIELDS of these subscribers' deliveries. On PostgreSQL the ids go as one array
    parameter (HISTORY_SQL): the ORM's IN list resolves each of hundreds of parameters in Python, a
    visible part of a planning run."""
    if not is_postgresql():
        return list(Delivery.objects.filter(subscriber_id__in=subscriber_ids).values_list(*HISTORY_FIELDS))
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL, [subscriber_ids])
        rows = cursor.fetchall()
    # Django reads jsonb as text and leaves decoding to the field: decode it as the field would.
    return [(sub, step, status, json.loads(v) if isinstance(v, str) else v, queued, sent)
            for sub, step, status, v, queued, sent in rows]


def deliveries_insert(rows: list[tuple[int, int, dict, bool, int | None]], *, now: datetime) -> list[int]:
    """New queued deliveries, (subscriber, step, article versions, welcome back, carer hand-off) each,
    in one statement; returns their ids (in no particular order). On PostgreSQL one INSERT ... SELECT
    FROM jsonb_to_recordset(one JSON document): a single parameter, encoded by the C json encoder,
    instead of a dozen per row through the ORM, so 10k rows cost the server's work and little of
    Python's. Elsewhere bulk_create."""
    if not rows:
        return []
    if not is_postgresql():
        created = Delivery.objects.bulk_create(
            Delivery(subscriber_id=sub, step_id=step, article_versions=versions, welcome_back=welcome,
                     carer_handoff_id=carer)
            for sub, step, versions, welcome, carer in rows
        )
        return [d.pk for d in created]
    document = json.dumps(
        [{"s": sub, "t": step, "v": versions, "w": welcome, "h": carer} for sub, step, versions, welcome, carer in rows]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Delivery._meta.db_table} (subscriber_id, step_id, article_versions, status, message_id, "
            "provider_message_id, attempts, failure_reason, queued_at, welcome_back, carer_handoff_id) "
            "SELECT v.s, v.t, v.v, %s, '', '', 0, '', %s, v.w, v.h FROM jsonb_to_recordset(%s::jsonb) "
            "AS v(s bigint, t bigint, v jsonb, w boolean, h bigint) RETURNING id",
            [Delivery.Status.QUEUED, now, document],
        )
        return [row[0] for row in cursor.fetchall()]


def subscribers_move(moves: list[tuple[int, int, datetime | None]]) -> None:
    """Each subscriber's new place and next look, (id, position, next_send_at). On PostgreSQL one
    UPDATE ... FROM jsonb_array_elements(one JSON document) for the whole batch; elsewhere one
    UPDATE per distinct move (a batch mostly moves together, far cheaper than a CASE per row)."""
    if not moves:
        return
    if is_postgresql():
        document = json.dumps([[pk, position, send_at.isoformat() if send_at else None] for pk, position,
                               send_at in moves])
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Subscriber._meta.db_table} AS s SET next_step_position = (v->>1)::integer, "
                "next_send_at = (v->>2)::timestamptz FROM jsonb_array_elements(%s::jsonb) AS v WHERE s.id = "
                "(v->>0)::bigint",
                [document],
            )
        return
    grouped: dict[tuple[int, datetime | None], list[int]] = defaultdict(list)
    for pk, position, send_at in moves:
        grouped[(position, send_at)].append(pk)
    for (position, send_at), ids in grouped.items():
        Subscriber.objects.filter(pk__in=ids).update(next_step_position=position, next_send_at=send_at)


def rows_table(rows: list[tuple], *, types: tuple[str, ...]) -> tuple[str, list]:
    """A table of `rows` for hand-written SQL (`FROM <sql> AS v`, columns column1, column2, ...),
    with its parameters. On PostgreSQL one array per column, unnested: a statement of a few
    parameters, which psycopg parses once and keeps; a VALUES list of hundreds of placeholders
    is parsed again on every call (psycopg keeps none past 50), a visible part of a send
    worker's CPU. `types` are the columns' PostgreSQL types. Elsewhere a VALUES list."""
    names = [f"column{i}" for i in range(1, len(types) + 1)]
    if is_postgresql():
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        columns = [[row[i] for row in rows] for i in range(len(types))]
        return f"(SELECT * FROM unnest({arrays}) AS u({', '.join(names)}))", columns
    if not rows:  # VALUES needs a row: a table with none
        return f"(SELECT {', '.join(f'NULL AS {name}' for name in names)} WHERE 0)", []
    marks = "(" + ", ".join(["%s"] * len(types)) + ")"
    return f"(VALUES {', '.join([marks] * len(rows))})", [value for row in rows for value in row]


class _EqualsAny(Lookup):
    """`lhs = ANY(array)`: the whole list as one array parameter (PostgreSQL)."""

    lookup_name = "equals_any"
    prepare_rhs = False

    def __init__(self, lhs, rhs, kind: str):
        self.kind = kind
        super().__init__(lhs, rhs)

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{self.kind}[])", [*lhs_params, list(self.rhs)]


def one_of(field: str, values: list, *, kind: str = "bigint"):
    """An ORM filter (`Model.objects.filter(one_of("pk", ids))`): `field` is one of `values`. On
    PostgreSQL one array parameter of the column's type `kind`, as in_ids; an `__in` list of
    hundreds of values costs the ORM a step per value and psycopg a fresh parse per statement.
    Elsewhere the ORM's own IN."""
    if is_postgresql():
        return _EqualsAny(F(field), list(values), kind)
    return In(F(field), list(values))


def in_ids(column: str, ids: list[int]) -> tuple[str, list]:
    """`column` is one of `ids`, for hand-written SQL, with its parameters: on PostgreSQL one
    array parameter (as rows_table), elsewhere an IN list."""
    if is_postgresql():
        return f"{column} = ANY(%s::bigint[])", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)
