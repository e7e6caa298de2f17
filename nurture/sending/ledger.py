"""The ledger: the one writer of a delivery's state (Delivery.status and what goes with it:
failure_reason, unanswered, the claim's stamps, next_attempt_at). Every change of state, wherever it
is decided (the send pipeline, the reconciler, provider webhooks, staff, a bereavement), is one of
the functions here, so "claimed", "sent", "skipped" and "failed for want of an answer" mean one
thing wherever they happen; tests/test_architecture.py fails if any other module writes the status.
Each is set-based (a fixed number of statements whatever the batch size) and idempotent.

    queued --claim (one UPDATE ... RETURNING)--> sending --stamp (one UPDATE per handed chunk)-->
        sent (one UPDATE per distinct article list) | queued (released: one UPDATE, one next_attempt_at)
        | failed / skipped / unknown (one UPDATE per reason)
    unknown --the provider's word--> sent | failed;  --no word in time--> failed, unanswered
    failed --staff requeue--> queued;  queued (or claimed, not handed over) --bereavement--> skipped

Every write after the claim is conditional on the claim still holding (status 'sending' with this
batch's stamp), so a row the reconciler took back is never written over, and every write is
idempotent: retrying one after a lost connection (db_retry.with_db_retry) cannot do anything twice.
The claim itself is retried with the same stamp and also matches rows it already took.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from nurture import dialect
from nurture.models import Delivery, Subscriber
from nurture.sending import journal
from nurture.sending.db_retry import DB_ERRORS, with_db_retry

logger = logging.getLogger(__name__)

# --- claim -----------------------------------------------------------------------------------------


def deliveries_claim(*, delivery_ids: list[int], stamp: datetime) -> list[int]:
    """queued -> sending for the whole batch in one UPDATE ... RETURNING: two workers (or a batch
    the broker redelivered) never take the same row. Also returns rows this very claim (same stamp)
    already took, so a retry after a lost connection is harmless."""
    if not delivery_ids:
        return []
    table = Delivery._meta.db_table
    among_ids, id_params = dialect.in_ids("id", delivery_ids)
    sql = (
        f"UPDATE {table} SET status = %s, sending_started_at = %s, provider_call_started_at = NULL "
        f"WHERE {among_ids} AND (status = %s OR (status = %s AND sending_started_at = %s AND "
        "provider_call_started_at IS NULL)) "
        "RETURNING id"
    )
    # Raw SQL: the stamp goes in as the ORM writes it (on SQLite, naive UTC text), or the ORM's
    # `sending_started_at=stamp` filters of the re-check and the settle would never match it.
    at = _at(stamp)
    params = [Delivery.Status.SENDING, at, *id_params, Delivery.Status.QUEUED, Delivery.Status.SENDING, at]
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
    # Raw SQL with a table of rows (nurture/dialect.py): this runs once per chunk of calls, and
    # the ORM's CASE/WHEN form cost more CPU than the provider call it guards.
    table = Delivery._meta.db_table
    rows, row_params = dialect.rows_table([(item.pk, _message_id(item), item.delivery.attempts + 1) for item in items],
                                          types=("bigint", "text", "integer"))
    sql = (
        f"UPDATE {table} SET provider_call_started_at = %s, message_id = v.column2, attempts = v.column3 "
        f"FROM {rows} AS v WHERE {table}.id = v.column1 AND {table}.status = %s "
        f"AND {table}.sending_started_at = %s RETURNING {table}.id"
    )
    params = [_at(timezone.now()), *row_params, Delivery.Status.SENDING, _at(stamp)]
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
    held = list(_ours(delivery_ids, stamp).filter(provider_call_started_at__isnull=not handed).values_list("pk",
                                                                                                           flat=True))
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
# or a read timeout), or failed for want of an answer (`unanswered`: the unknown window passed
# before the journal was replayed or the provider's event came).
ANSWERABLE = Q(status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN]) | Q(
    status=Delivery.Status.FAILED, unanswered=True
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
    # Raw SQL with a table of rows, as deliveries_stamp_handed: once per group of answers.
    table, subscribers = Delivery._meta.db_table, Subscriber._meta.db_table
    rows, row_params = dialect.rows_table(list(provider_message_ids.items()), types=("bigint", "text"))
    # ANSWERABLE, spelled out; `among` (a queryset) as a subquery.
    where = f"({table}.status IN (%s, %s) OR ({table}.status = %s AND {table}.unanswered = %s))"
    where_params = [Delivery.Status.SENDING, Delivery.Status.UNKNOWN, Delivery.Status.FAILED, True]
    if among is not None:
        among_sql, among_params = among.filter(pk__in=list(provider_message_ids)).values("pk").query.sql_with_params()
        where, where_params = f"{where} AND {table}.id IN ({among_sql})", [*where_params, *among_params]
    at = _at(sent_at)
    sets, set_params = "", []
    if article_versions is not None:
        sets, set_params = ", article_versions = %s", [connection.ops.adapt_json_value(article_versions, None)]
    params = [Delivery.Status.SENT, at, False, *set_params, *row_params]
    sql = (
        f"UPDATE {table} SET status = %s, sent_at = %s, provider_message_id = v.column2, failure_reason = '', "
        f"failed_at = NULL, unanswered = %s{sets} FROM {rows} AS v WHERE {table}.id = v.column1 AND {where} "
        f"RETURNING {table}.subscriber_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        marked = cursor.fetchall()
        subscriber_ids = sorted({row[0] for row in marked})
        if subscriber_ids:
            among_ids, id_params = dialect.in_ids("id", subscriber_ids)
            cursor.execute(
                f"UPDATE {subscribers} SET last_sent_at = %s WHERE {among_ids} AND (last_sent_at IS NULL OR "
                "last_sent_at < %s)",
                [at, *id_params, at],
            )
    return len(marked)


def deliveries_record_sent(*, answers: list[SentAnswer], sent_at: datetime | None = None,
                           journal_if_down: bool = True) -> int:
    """Accepted answers, written at once: one mark-sent per distinct article list (a batch is
    mostly one), retried through a lost connection. If the database stays away through the
    retries, the answers go to the journal (nurture/sending/journal.py) to be applied when it is
    back (journal_if_down=False: the replay itself, which keeps its entries on failure instead)."""
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

    if not journal_if_down:
        return write()
    try:
        return with_db_retry(write, what="recording sent")
    except DB_ERRORS:
        logger.exception("could not record %d accepted answers; journalling them", len(answers))
        journal.answers_journal_write(answers=[asdict(a) for a in answers], sent_at=sent_at)
        return 0


def answers_journal_replay() -> int:
    """Every answer the journal kept while the database was away, recorded as sent by the same
    writer as a live answer; returns how many. Database errors propagate (the entries stay)."""
    def apply(entries: list[dict], sent_at: datetime) -> None:
        answers = [
            SentAnswer(
                delivery_id=int(entry["delivery_id"]), subscriber_id=int(entry["subscriber_id"]),
                provider_message_id=str(entry.get("provider_message_id") or ""),
                article_versions=entry.get("article_versions") or {},
            )
            for entry in entries
        ]
        deliveries_record_sent(answers=answers, sent_at=sent_at, journal_if_down=False)

    return journal.answers_journal_replay(apply=apply)


def answers_journal_pending() -> bool:
    """Whether the journal holds answers not yet recorded."""
    return bool(journal.pending_files())


def delivery_settle_unknown(*, delivery_id: int, accepted: bool, provider_message_id: str, reason: str,
                            at: datetime) -> int:
    """An unknown outcome settled by the provider's word (its webhook event): accepted -> sent, with
    the provider's id so later events find it; else failed with `reason` (an answer: not
    `unanswered`). Only while the row still awaits an answer (unknown, or failed for want of one).
    Returns rows written (0 or 1)."""
    awaiting = Delivery.objects.filter(ANSWERABLE).exclude(status=Delivery.Status.SENDING)
    if accepted:
        return deliveries_mark_sent(provider_message_ids={delivery_id: provider_message_id}, sent_at=at, among=awaiting)
    return awaiting.filter(pk=delivery_id).update(
        status=Delivery.Status.FAILED, failed_at=at, failure_reason=reason[:2000], unanswered=False)


# --- the batch backs off; the safety nets; staff; a bereavement ------------------------------------


def deliveries_back_off(*, delivery_ids: list[int], countdown: float) -> list[int]:
    """Every row of a batch that went back to queued carries the same next_attempt_at (now +
    countdown): the batch's backoff, which the reconciler respects. Returns those rows' ids."""
    back = list(Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.QUEUED).values_list("pk",
                                                                                                        flat=True))
    Delivery.objects.filter(pk__in=back, status=Delivery.Status.QUEUED).update(
        next_attempt_at=timezone.now() + timedelta(seconds=countdown))
    return back


def deliveries_requeue_unhanded(*, delivery_ids: list[int], among: QuerySet[Delivery], now: datetime,
                                reason: str) -> int:
    """The reconciler: rows stuck in sending (still in `among`) that were never handed to the
    provider go back to queued, due now."""
    return among.filter(pk__in=delivery_ids, provider_call_started_at__isnull=True).update(
        status=Delivery.Status.QUEUED, next_attempt_at=now, failure_reason=reason[:2000])


def deliveries_mark_unknown(*, among: QuerySet[Delivery], reason: str) -> int:
    """The reconciler: rows stuck in sending (in `among`) that were handed over with no answer
    recorded: unknown, for the provider's word (never resent)."""
    return among.filter(provider_message_id="", provider_call_started_at__isnull=False).update(
        status=Delivery.Status.UNKNOWN, failure_reason=reason[:2000])


def deliveries_expire_unknown(*, waited_since: datetime, now: datetime, reason: str) -> int:
    """The reconciler: unknown since before `waited_since` (the call, or the claim if it never
    started), no word from the provider: failed and `unanswered`, for staff to check and requeue."""
    return Delivery.objects.filter(status=Delivery.Status.UNKNOWN).filter(
        Q(provider_call_started_at__lt=waited_since) | Q(provider_call_started_at__isnull=True,
                                                         sending_started_at__lt=waited_since)
    ).update(status=Delivery.Status.FAILED, failed_at=now, failure_reason=reason[:2000], unanswered=True)


@transaction.atomic
def deliveries_requeue(*, delivery_ids: list[int], enqueue) -> int:
    """Staff send failed deliveries again (e.g. one failed for want of an answer that they checked
    never arrived at the provider). Only failed rows move; the send task is enqueued once this commits."""
    ids = list(
        Delivery.objects.select_for_update()
        .filter(pk__in=delivery_ids, status=Delivery.Status.FAILED)
        .values_list("id", flat=True)
    )
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.QUEUED, provider_call_started_at=None, next_attempt_at=timezone.now(), failed_at=None,
        failure_reason="requeued by staff", unanswered=False,
        attempts=0,  # a fresh set of retries, not the exhausted one
    )
    if ids:
        transaction.on_commit(lambda: enqueue(ids))
    return len(ids)


def deliveries_cancel_unsent(*, subscriber_id: int, reason: str) -> int:
    """Queued deliveries, and claimed ones not yet handed to the provider, become skipped. Rows
    already handed over (provider_call_started_at set) may be at the provider: they are left."""
    unsent = Q(status=Delivery.Status.QUEUED) | Q(status=Delivery.Status.SENDING, provider_call_started_at__isnull=True)
    return Delivery.objects.filter(unsent, subscriber_id=subscriber_id).update(
        status=Delivery.Status.SKIPPED, failure_reason=reason[:2000], next_attempt_at=None,
    )
