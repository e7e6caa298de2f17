"""A delivery row's state changes during a send, each one writer, set-based: each is a fixed number of
statements whatever the batch size, and each survives a dropped database connection. The batch
send (services/sending.py, send_calls.py, esp_batch.py), the reconciler (services/reconcile.py),
the answer journal and provider webhooks all go through these, so "claimed", "sent" and "skipped"
mean one thing wherever they happen.

    queued --claim (one UPDATE ... RETURNING)--> sending --stamp (one UPDATE per handed chunk)-->
        sent (one UPDATE per distinct article list) | queued (released: one UPDATE, one next_attempt_at)
        | failed / skipped / unknown (one UPDATE per reason)

Every write after the claim is conditional on the claim still holding (status 'sending' with this
batch's stamp), so a row the reconciler took back is never written over, and every write is
idempotent: retrying one after a lost connection (with_db_retry) cannot do anything twice. The
claim itself is retried with the same stamp and also matches rows it already took.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from nurture import selectors
from nurture.models import CarerHandoff, Delivery, Subscriber

logger = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)


def infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Errors of our own infrastructure (database, Redis, the broker), never of the provider: a
    batch that meets one releases what it claimed and re-enqueues it."""
    import kombu.exceptions
    import redis.exceptions

    return (*DB_ERRORS, redis.exceptions.RedisError, kombu.exceptions.OperationalError, ConnectionRefusedError)


def _drop_connection() -> None:
    try:
        connection.close()
    except Exception:  # the connection is already gone; Django forgets it either way
        connection.connection = None


def with_db_retry(fn, *, what: str, attempts: int | None = None):
    """Run fn(); on a lost or broken database connection, reconnect and run it again, with backoff
    (0.1 s, 0.3 s, 0.9 s ... capped at 5 s), NURTURE_DB_RETRY_ATTEMPTS times in all. fn must be
    idempotent. Raises the last error when they are used up."""
    attempts = attempts or settings.NURTURE_DB_RETRY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DB_ERRORS as exc:
            if connection.in_atomic_block or attempt == attempts:
                raise
            delay = min(5.0, 0.1 * 3 ** (attempt - 1))
            logger.warning("database error during %s (attempt %d/%d, retrying in %.1fs): %s", what, attempt, attempts, delay, type(exc).__name__)
            _drop_connection()
            time.sleep(delay)


# --- claim and re-check ----------------------------------------------------------------------------


def deliveries_claim(*, delivery_ids: list[int], stamp: datetime) -> list[int]:
    """queued -> sending for the whole batch in one UPDATE ... RETURNING: two workers (or a batch
    the broker redelivered) never take the same row. Also returns rows this very claim (same stamp)
    already took, so a retry after a lost connection is harmless."""
    if not delivery_ids:
        return []
    table = Delivery._meta.db_table
    marks = ", ".join(["%s"] * len(delivery_ids))
    sql = (
        f"UPDATE {table} SET status = %s, sending_started_at = %s, provider_call_started_at = NULL "
        f"WHERE id IN ({marks}) AND (status = %s OR (status = %s AND sending_started_at = %s AND provider_call_started_at IS NULL)) "
        "RETURNING id"
    )
    # Raw SQL: the stamp goes in as the ORM writes it (on SQLite, naive UTC text), or the ORM's
    # `sending_started_at=stamp` filters of the re-check and the settle would never match it.
    at = _at(stamp)
    params = [Delivery.Status.SENDING, at, *delivery_ids, Delivery.Status.QUEUED, Delivery.Status.SENDING, at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())


@dataclass
class Claimed:
    """A claimed, re-checked delivery and the articles its email carries."""

    delivery: Delivery
    articles: list
    message: object = None  # the built email, once built
    recipients: list | None = None  # its one address (the subscriber's, or the carer's for a carer's copy)

    @property
    def pk(self) -> int:
        return self.delivery.pk


def _skip_reason(delivery: Delivery, suppressed: set[str], articles: list) -> str:
    subscriber = delivery.subscriber
    if subscriber.status != Subscriber.Status.ACTIVE:
        return f"subscriber is {subscriber.status}"
    if delivery.step.series_id != subscriber.series_id:
        return "subscriber moved to another series"
    if delivery.for_carer and delivery.carer_handoff.status != CarerHandoff.Status.ACTIVE:
        return "carer hand-off ended"
    if delivery.to_address.strip().lower() in suppressed:
        return "address is suppressed"
    if not articles:
        return "no published article left in this step"
    return ""


def deliveries_recheck(*, delivery_ids: list[int], stamp: datetime) -> tuple[list[Claimed], dict[str, list[int]]]:
    """Checked again just before sending, not only at planning: they may have left, paused, moved
    to another series or bounced since, and a carer's hand-off may have ended. Four reads for the
    whole batch (rows with subscriber, step and carer hand-off, suppressions, articles), read-only.
    Returns the rows to send, in id order, and {reason: ids} of rows to skip."""
    deliveries = list(
        Delivery.objects.select_related("subscriber", "step__series", "carer_handoff")
        .filter(pk__in=delivery_ids, status=Delivery.Status.SENDING, sending_started_at=stamp)
        .order_by("pk")
    )
    suppressed = selectors.suppressed_among(emails=[d.to_address for d in deliveries])
    articles = selectors.deliveries_articles(deliveries=deliveries)
    keep, skip = [], defaultdict(list)
    for delivery in deliveries:
        reason = _skip_reason(delivery, suppressed, articles[delivery.pk])
        if reason:
            skip[reason].append(delivery.pk)
        else:
            # One address per message: the building asks the database nothing more.
            keep.append(Claimed(delivery, articles[delivery.pk], recipients=[delivery.to_address]))
    return keep, dict(skip)


def _ours(delivery_ids, stamp: datetime):
    return Delivery.objects.filter(pk__in=list(delivery_ids), status=Delivery.Status.SENDING, sending_started_at=stamp)


def deliveries_settle(*, delivery_ids: list[int], stamp: datetime, status: str, reason: str) -> int:
    """sending -> failed / skipped / unknown (reason kept for staff), one UPDATE, only where our claim holds."""
    if not delivery_ids:
        return 0
    now = timezone.now()
    return _ours(delivery_ids, stamp).update(
        status=status, failure_reason=reason[:2000], failed_at=now if status == Delivery.Status.FAILED else None
    )


def deliveries_stamp_handed(*, items: list[Claimed], stamp: datetime) -> list[Claimed]:
    """The last moment before the provider may have them: provider_call_started_at, our
    Message-ID and the attempt count, in one UPDATE for the chunk; only rows whose claim still
    holds (the reconciler may have taken a row stuck too long). From here an unknown end is never
    resent. Returns the rows handed over. Idempotent: it sets values, it does not add."""
    if not items:
        return []
    # Raw SQL with a VALUES table (PostgreSQL and SQLite alike): this runs once per chunk of calls,
    # and the ORM's CASE/WHEN form cost more CPU than the provider call it guards.
    table = Delivery._meta.db_table
    rows = ", ".join(["(%s, %s, %s)"] * len(items))
    sql = (
        f"UPDATE {table} SET provider_call_started_at = %s, message_id = v.column2, attempts = v.column3 "
        f"FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1 AND {table}.status = %s "
        f"AND {table}.sending_started_at = %s RETURNING {table}.id"
    )
    params = [_at(timezone.now())]
    for item in items:
        params += [item.pk, _message_id(item), item.delivery.attempts + 1]
    params += [Delivery.Status.SENDING, _at(stamp)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        held = {row[0] for row in cursor.fetchall()}
    return [item for item in items if item.pk in held]


def _at(moment: datetime):
    """A datetime as the ORM writes it (on SQLite, naive UTC text), for raw SQL that the ORM's
    own filters must match later."""
    return connection.ops.adapt_datetimefield_value(moment)


def _message_id(item: Claimed) -> str:
    message = item.message
    headers = getattr(message, "merge_headers", None)
    if headers:
        return headers[item.delivery.subscriber.email]["Message-ID"]
    return message.extra_headers.get("Message-ID", "")


def deliveries_release(
    *, delivery_ids: list[int], stamp: datetime, countdown: float, handed: bool, reason: str | None = None
) -> list[int]:
    """Back to queued (the provider does not have them), all with ONE next_attempt_at: the batch
    backs off together and the reconciler respects it. handed=False takes only rows never handed
    to the provider (a row handed over whose answer is not written may be accepted: never
    released); handed=True is for rows the provider answered with a transient error. Returns the
    ids released (our claim held)."""
    if not delivery_ids:
        return []
    next_at = timezone.now() + timedelta(seconds=countdown)
    held = list(_ours(delivery_ids, stamp).filter(provider_call_started_at__isnull=not handed).values_list("pk", flat=True))
    fields = {"status": Delivery.Status.QUEUED, "provider_call_started_at": None, "next_attempt_at": next_at}
    if reason is not None:
        fields["failure_reason"] = reason[:2000]
    _ours(held, stamp).update(**fields)
    return held


# --- the provider's answer -------------------------------------------------------------------------

NOT_CLAIMED = "not-claimed"


@dataclass(frozen=True)
class SentAnswer:
    delivery_id: int
    subscriber_id: int
    provider_message_id: str
    article_versions: dict


# Rows an accepted answer may land on: still being sent, already marked unknown (the reconciler
# or a read timeout), or failed for want of an answer (the unknown window passed before the
# journal was replayed or the provider's event came).
UNKNOWN_OUTCOME = "unknown outcome"  # how a failure for want of an answer starts its reason
ANSWERABLE = Q(status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN]) | Q(
    status=Delivery.Status.FAILED, failure_reason__startswith=UNKNOWN_OUTCOME
)


def deliveries_mark_sent(
    *, provider_message_ids: Mapping[int, str], sent_at: datetime, article_versions: dict | None = None,
    among: QuerySet[Delivery] | None = None,
) -> int:
    """The provider has them: status sent at `sent_at`, with each delivery's provider message id
    ({delivery id: id}), no failure reason, and `article_versions` (what was rendered) when given.
    Only rows still awaiting an answer are written (ANSWERABLE), and with `among` only rows still in
    it (the reconciler: still stuck). Each subscriber's last_sent_at moves forward to `sent_at`,
    never back. Two UPDATEs, whatever the number of rows. Idempotent. Returns the number of
    deliveries marked."""
    if not provider_message_ids:
        return 0
    # Raw SQL with a VALUES table, as deliveries_stamp_handed: once per group of answers.
    table, subscribers = Delivery._meta.db_table, Subscriber._meta.db_table
    rows = ", ".join(["(%s, %s)"] * len(provider_message_ids))
    # ANSWERABLE, spelled out; `among` (a queryset) as a subquery.
    where = f"({table}.status IN (%s, %s) OR ({table}.status = %s AND {table}.failure_reason LIKE %s))"
    where_params = [Delivery.Status.SENDING, Delivery.Status.UNKNOWN, Delivery.Status.FAILED, f"{UNKNOWN_OUTCOME}%"]
    if among is not None:
        among_sql, among_params = among.filter(pk__in=list(provider_message_ids)).values("pk").query.sql_with_params()
        where, where_params = f"{where} AND {table}.id IN ({among_sql})", [*where_params, *among_params]
    at = _at(sent_at)
    sets, set_params = "", []
    if article_versions is not None:
        sets, set_params = ", article_versions = %s", [connection.ops.adapt_json_value(article_versions, None)]
    params = [Delivery.Status.SENT, at, *set_params]
    for pk, provider_id in provider_message_ids.items():
        params += [pk, provider_id]
    sql = (
        f"UPDATE {table} SET status = %s, sent_at = %s, provider_message_id = v.column2, failure_reason = '', "
        f"failed_at = NULL{sets} FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1 AND {where} "
        f"RETURNING {table}.subscriber_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        marked = cursor.fetchall()
        subscriber_ids = sorted({row[0] for row in marked})
        if subscriber_ids:
            marks = ", ".join(["%s"] * len(subscriber_ids))
            cursor.execute(
                f"UPDATE {subscribers} SET last_sent_at = %s WHERE id IN ({marks}) AND (last_sent_at IS NULL OR last_sent_at < %s)",
                [at, *subscriber_ids, at],
            )
    return len(marked)


def deliveries_record_sent(*, answers: list[SentAnswer], sent_at: datetime | None = None, journal: bool = True) -> int:
    """Accepted answers, written at once: one mark-sent per distinct article list (a batch is
    mostly one), retried through a lost connection. If the database stays away through the
    retries, the answers go to the journal (services/answer_journal.py) to be applied when it is
    back (journal=False: the replay itself, which keeps its entries on failure instead)."""
    from nurture.sending.journal import answers_journal_write

    if not answers:
        return 0
    sent_at = sent_at or timezone.now()
    by_versions: dict[str, list[SentAnswer]] = defaultdict(list)
    for answer in answers:
        by_versions[repr(sorted(answer.article_versions.items()))].append(answer)

    def write() -> int:
        return sum(
            deliveries_mark_sent(
                provider_message_ids={a.delivery_id: a.provider_message_id for a in group}, sent_at=sent_at,
                article_versions=group[0].article_versions,
            )
            for group in by_versions.values()
        )

    if not journal:
        return write()
    try:
        return with_db_retry(write, what="recording sent")
    except DB_ERRORS:
        logger.exception("could not record %d accepted answers; journalling them", len(answers))
        answers_journal_write(answers=[a.__dict__ for a in answers], sent_at=sent_at)
        return 0


def delivery_settle_unknown(*, delivery_id: int, accepted: bool, provider_message_id: str, reason: str, at: datetime) -> int:
    """An unknown outcome settled by the provider's word (its webhook event): accepted -> sent, with
    the provider's id so later events find it; else failed with `reason`. Only while the row still
    awaits an answer (unknown, or failed for want of one). Returns rows written (0 or 1)."""
    awaiting = Delivery.objects.filter(ANSWERABLE).exclude(status=Delivery.Status.SENDING)
    if accepted:
        return deliveries_mark_sent(provider_message_ids={delivery_id: provider_message_id}, sent_at=at, among=awaiting)
    return awaiting.filter(pk=delivery_id).update(status=Delivery.Status.FAILED, failed_at=at, failure_reason=reason[:2000])
