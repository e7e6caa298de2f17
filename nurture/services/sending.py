"""Sending: claim a batch, re-check it, hand it to the provider with several calls in flight, record
each answer as it comes.

A delivery's life (docs/scheduler.md has the whole story):

    queued --claim--> sending --provider accepted--> sent
                         |--transient error (429, 5xx, connect error)--> queued (the batch backs off together)
                         |--permanent error (other 4xx)--> failed (reason kept, not retried)
                         |--recipient refused--> failed + address suppressed
                         |--no answer (read timeout): the provider may have it--> unknown
                         '--subscriber no longer active / address suppressed--> skipped

A batch is claimed in one UPDATE (queued -> sending), re-checked in a fixed number of reads, and
sent in chunks: a chunk's rate-limit slots are taken at once, its rows are stamped
`provider_call_started_at` in one UPDATE (only where our claim holds), then its calls run in a
bounded thread pool (NURTURE_SEND_CONCURRENCY). Each answer is written as soon as its call returns
(deliveries: retried through a lost database connection, journalled if the database stays away).
The first call of a batch goes alone (a probe): only after the provider accepted it do several
go at once, so a provider that is down sees one call per batch per backoff step.

An infrastructure error (database, Redis, broker) stops the batch: calls in flight are awaited and
recorded, the rows not handed over go back to queued with one short backoff, and the task
re-enqueues them before it fails.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from nurture import metrics, providers, selectors
from nurture.selectors import deliveries as mail_health
from nurture.emails.messages import build_carer_confirmation_email, build_carer_notice_email
from nurture.models import CarerHandoff, Delivery
from nurture.services.deliveries import (
    NOT_CLAIMED, deliveries_claim, deliveries_recheck, deliveries_release, deliveries_settle, infrastructure_errors, with_db_retry,
)
from nurture.services import throttle
from nurture.services.signup import EmailOutcome, throttled_email_send
from nurture.services.esp_batch import group_for_batch_calls, send_in_batch_calls, send_in_messages_batches  # noqa: F401 (group_for_batch_calls: the batch API)
from nurture.services.send_calls import (  # noqa: F401 (retry_countdown, BatchOutcome: the sending API)
    RETRY, BatchOutcome, Slots, _error_summary, release_countdown, retry_countdown, send_one_by_one,
)

logger = logging.getLogger(__name__)

BRAKED = "braked"  # not claimed: series sending is paused by the complaint brake


# --- the batch ------------------------------------------------------------------------------------


def deliveries_send(*, delivery_ids: list[int], wait_for_slot=None) -> BatchOutcome:
    """Send a batch. Returns counts per status; `retry_ids` to re-enqueue after `retry_countdown`
    (a transient provider error backs the rest of the batch off with it; an infrastructure error
    releases it); `error` if an infrastructure error stopped the batch (the task re-raises it once
    the ids are re-enqueued). Ids already sent are never in retry_ids."""
    outcome = BatchOutcome()
    stamp = timezone.now()
    try:
        if with_db_retry(mail_health.sending_brake_engaged, what="brake") is not None:
            # The complaint brake: the deliveries stay queued, untouched; the reconciler's sweeper
            # sends them on once staff resume (services/brake.py).
            outcome.count(BRAKED, len(delivery_ids))
            logger.info("send batch size=%d held by the complaint brake", len(delivery_ids))
            return outcome
        claimed_ids = with_db_retry(lambda: deliveries_claim(delivery_ids=list(delivery_ids), stamp=stamp), what="claim")
    except infrastructure_errors() as exc:  # nothing claimed (or not known to be): all of it again, later
        outcome.error, outcome.retry_ids, outcome.retry_countdown = exc, list(delivery_ids), release_countdown()
        return outcome
    outcome.count(NOT_CLAIMED, len(delivery_ids) - len(claimed_ids))
    if not claimed_ids:
        return outcome
    try:
        items, skips = with_db_retry(lambda: deliveries_recheck(delivery_ids=claimed_ids, stamp=stamp), what="re-check")
        for reason, ids in skips.items():
            outcome.count(Delivery.Status.SKIPPED, with_db_retry(
                lambda: deliveries_settle(delivery_ids=ids, stamp=stamp, status=Delivery.Status.SKIPPED, reason=reason), what="skip"))
        endpoint, messages_batch = providers.batch_endpoint(), providers.messages_batch_provider()
        if wait_for_slot is None and messages_batch is not None and len(items) > 1:
            send_in_messages_batches(items, stamp=stamp, outcome=outcome, provider=messages_batch)
        elif endpoint is None:
            send_one_by_one(items, stamp=stamp, outcome=outcome, slots=Slots(wait_for_slot))
        else:
            send_in_batch_calls(items, stamp=stamp, outcome=outcome, endpoint=endpoint)
    except infrastructure_errors() as exc:
        outcome.error = exc
        logger.error("send batch stopped by an infrastructure error: %s", _error_summary(exc))
    if outcome.error is not None:
        # Everything this task claimed and did not hand over goes back to queued, with one short
        # backoff for the whole batch, for the task to re-enqueue.
        countdown = release_countdown()
        try:
            released = with_db_retry(
                lambda: deliveries_release(delivery_ids=claimed_ids, stamp=stamp, countdown=countdown, handed=False),
                what="release",
            )
        except infrastructure_errors():
            logger.exception("could not release the batch; the reconciler will take its rows back")
            released = []
        outcome.retry_ids = sorted(set(outcome.retry_ids) | set(released))
        outcome.retry_countdown = max(outcome.retry_countdown, countdown)
    logger.info("send batch size=%d outcome=%s retry=%d", len(delivery_ids), outcome.counts, len(outcome.retry_ids))
    metrics.count_emails_sent(outcome.counts.get(Delivery.Status.SENT, 0))
    return outcome


# --- single sends, staff requeue, confirmations -----------------------------------------------------


@dataclass
class SendOutcome:
    status: str  # a Delivery.Status, "not-claimed", or "retry"
    countdown: float = 0.0


def delivery_send(*, delivery_id: int, wait_for_slot=None) -> SendOutcome:
    """One delivery through the same pipeline (tests and staff tools)."""
    outcome = deliveries_send(delivery_ids=[delivery_id], wait_for_slot=wait_for_slot)
    if outcome.retry_ids:
        return SendOutcome(RETRY, outcome.retry_countdown)
    [status] = list(outcome.counts) or [NOT_CLAIMED]
    return SendOutcome(status)


@transaction.atomic
def deliveries_requeue(*, delivery_ids: list[int], enqueue) -> int:
    """Staff send failed deliveries again (e.g. an "unknown outcome" they checked never arrived at
    the provider). Only failed rows move; the send task is enqueued once this commits."""
    ids = list(
        Delivery.objects.select_for_update()
        .filter(pk__in=delivery_ids, status=Delivery.Status.FAILED)
        .values_list("id", flat=True)
    )
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.QUEUED, provider_call_started_at=None, next_attempt_at=timezone.now(), failed_at=None,
        failure_reason="requeued by staff", attempts=0,  # a fresh set of retries, not the exhausted one
    )
    if ids:
        transaction.on_commit(lambda: enqueue(ids))
    return len(ids)


def carer_confirmation_email_send(*, handoff_id: int, mailbox_counted: bool = False) -> EmailOutcome:
    """The carer's confirmation email, while the request still waits for the carer (not stopped,
    replaced or already agreed) and their address is not suppressed: decided here, in the worker,
    so the form answers the same whatever address it was given. Under the per-mailbox throttle
    and the carer emails' own hourly ceiling (NURTURE_CARER_EMAILS_PER_HOUR): nobody can fill a
    stranger's inbox by naming them as carer again and again, nor hold back sign-up confirmations.
    mailbox_counted: a retry, already counted against the mailbox."""
    handoff = CarerHandoff.objects.select_related("subscriber").filter(
        pk=handoff_id, status=CarerHandoff.Status.PENDING, carer_confirmed_at__isnull=True
    ).first()
    if handoff is None or selectors.is_suppressed(email=handoff.carer_email):
        return EmailOutcome(sent=False)
    outcome = throttled_email_send(
        email=handoff.carer_email, mailbox_counted=mailbox_counted, kind="carer_confirmation",
        build=lambda: build_carer_confirmation_email(handoff), take_slot=throttle.take_carer_email_slot,
    )
    logger.info("carer confirmation handoff=%s sent=%s", handoff.pk, outcome.sent)
    return outcome


def carer_notice_email_send(*, handoff_id: int, event: str) -> EmailOutcome:
    """The subscriber's notice of a step of their carer hand-off (services.carers.NOTICE_*), to
    their own address, unless it is suppressed or the subscriber erased. Never dropped by the
    mailbox throttle (the subscriber must be told; the daily cap on carer requests bounds it);
    under the carer emails' hourly ceiling."""
    handoff = CarerHandoff.objects.select_related("subscriber").filter(pk=handoff_id).first()
    if handoff is None or selectors.is_suppressed(email=handoff.subscriber.email):
        return EmailOutcome(sent=False)
    outcome = throttled_email_send(
        email=handoff.subscriber.email, mailbox_counted=True, kind="carer_notice",
        build=lambda: build_carer_notice_email(handoff, event=event), take_slot=throttle.take_carer_email_slot,
    )
    logger.info("carer notice handoff=%s event=%s sent=%s", handoff.pk, event, outcome.sent)
    return outcome
