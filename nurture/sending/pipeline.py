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
(the ledger: retried through a lost database connection, journalled if the database stays away).
The first call of a batch goes alone (a probe): only after the provider accepted it do several
go at once, so a provider that is down sees one call per batch per backoff step.

An infrastructure error (database, Redis, broker) stops the batch: calls in flight are awaited and
recorded, the rows not handed over go back to queued with one short backoff, and the task
re-enqueues them before it fails.
"""
from __future__ import annotations

import logging

from django.utils import timezone

from nurture import metrics, providers
from nurture.models import Delivery
from nurture.selectors import deliveries as mail_health
from nurture.sending.batch_calls import send_in_batch_calls, send_in_messages_batches
from nurture.sending.calls import Slots, send_one_by_one
from nurture.sending.db_retry import infrastructure_errors, with_db_retry
from nurture.sending.handover import BatchOutcome, error_summary, release_countdown
from nurture.sending.ledger import NOT_CLAIMED, deliveries_claim, deliveries_release, deliveries_settle
from nurture.sending.recheck import deliveries_recheck

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
        claimed_ids = with_db_retry(lambda: deliveries_claim(delivery_ids=list(delivery_ids), stamp=stamp),
                                    what="claim")
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
                lambda: deliveries_settle(delivery_ids=ids, stamp=stamp, status=Delivery.Status.SKIPPED, reason=reason),
                what="skip"))
        endpoint, messages_batch = providers.batch_endpoint(), providers.messages_batch_provider()
        if wait_for_slot is None and messages_batch is not None and len(items) > 1:
            send_in_messages_batches(items, stamp=stamp, outcome=outcome, provider=messages_batch)
        elif endpoint is None:
            send_one_by_one(items, stamp=stamp, outcome=outcome, slots=Slots(wait_for_slot))
        else:
            send_in_batch_calls(items, stamp=stamp, outcome=outcome, endpoint=endpoint)
    except infrastructure_errors() as exc:
        outcome.error = exc
        logger.error("send batch stopped by an infrastructure error: %s", error_summary(exc))
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
