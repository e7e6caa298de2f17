"""Sending: claim a delivery, re-check it may go, hand it to the provider, record the outcome.

A delivery's life (docs/scheduler.md has the whole story):

    queued --claim--> sending --provider accepted--> sent
                         |--transient error (429, 5xx, timeout, connection)--> queued (retry later)
                         |--permanent error (other 4xx)--> failed (reason kept, not retried)
                         |--recipient refused--> failed + address suppressed
                         '--subscriber no longer active / address suppressed--> skipped

The claim is one conditional UPDATE (queued -> sending), so two workers, or a batch the broker
redelivers after a worker died, never send the same row. Just before the provider call the row is
stamped `provider_call_started_at` (only if our claim still holds), and the provider's answer is
written in one UPDATE straight after the call. So a row found stuck in `sending` tells the
reconciler (nurture.services.reconcile) whether the provider may have it.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from nurture import providers, selectors
from nurture.emails.cache import step_body_key
from nurture.emails.merge import NotBatchable, build_batch_email
from nurture.emails.messages import build_carer_confirmation_email, build_delivery_email
from nurture.models import CarerHandoff, Delivery
from nurture.services import throttle
from nurture.services.deliveries import (
    NOT_CLAIMED, ClaimedDelivery, claimed_row, deliveries_mark_sent, delivery_claim_and_check, delivery_settle,
)
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

RETRY = "retry"


def retry_countdown(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, then a random point in its
    upper half so a crowd of retries spreads out instead of returning together."""
    ceiling = min(settings.NURTURE_RETRY_MAX_SECONDS, settings.NURTURE_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def _error_summary(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"[:500]


def _fail(delivery_id: int, stamp: datetime, reason: str) -> str:
    return delivery_settle(delivery_id=delivery_id, stamp=stamp, status=Delivery.Status.FAILED, reason=reason)


# --- one delivery -----------------------------------------------------------------------------------


@dataclass
class SendOutcome:
    status: str  # a Delivery.Status, NOT_CLAIMED, or RETRY
    countdown: float = 0.0


def delivery_send(*, delivery_id: int, connection=None, wait_for_slot=throttle.wait_for_send_slot) -> SendOutcome:
    claimed, settled = delivery_claim_and_check(delivery_id=delivery_id)
    if claimed is None:
        return SendOutcome(settled)  # not claimed (the claim keeps it once) or skipped
    delivery, stamp, articles = claimed.delivery, claimed.stamp, claimed.articles
    try:
        message = build_delivery_email(delivery, articles=articles)
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building delivery=%s failed", delivery_id)
        return SendOutcome(_fail(delivery_id, stamp, f"could not build the email: {_error_summary(exc)}"))
    message.connection = connection
    versions = message.nurture_article_versions

    wait_for_slot()  # the provider's sends-per-second ceiling, shared by all workers
    # The last moment before the provider may have it. Only if our claim still holds (the
    # reconciler may have taken a row stuck too long); from here an unknown end is not resent.
    handed = claimed_row(delivery_id, stamp).update(
        provider_call_started_at=timezone.now(),
        message_id=message.extra_headers.get("Message-ID", ""),
        attempts=delivery.attempts + 1,
    )
    if not handed:
        return SendOutcome(NOT_CLAIMED)
    try:
        message.send()
    except Exception as exc:
        return _after_error(delivery, stamp, exc, attempts=delivery.attempts + 1)

    # Persist the provider's answer first, in one statement: the reconciler trusts it.
    status = getattr(message, "anymail_status", None)
    provider_id = str(status.message_id or "") if status is not None and status.message_id else ""
    deliveries_mark_sent(provider_message_ids={delivery_id: provider_id}, sent_at=timezone.now(), article_versions=versions)
    return SendOutcome(Delivery.Status.SENT)


def _after_error(delivery: Delivery, stamp: datetime, exc: BaseException, *, attempts: int) -> SendOutcome:
    kind = providers.classify_send_error(exc)
    summary = _error_summary(exc)
    logger.warning("send delivery=%s attempt=%d error kind=%s type=%s status=%s", delivery.pk, attempts, kind, type(exc).__name__, getattr(exc, "status_code", None))
    if kind == providers.TRANSIENT and attempts < settings.NURTURE_SEND_MAX_ATTEMPTS:
        countdown = retry_countdown(attempts)
        # Back to queued: the provider did not take it. A later claim sends it (once).
        claimed_row(delivery.pk, stamp).update(
            status=Delivery.Status.QUEUED,
            provider_call_started_at=None,
            next_attempt_at=timezone.now() + timedelta(seconds=countdown),
            failure_reason=f"attempt {attempts}: {summary}",
        )
        return SendOutcome(RETRY, countdown)
    if kind == providers.TRANSIENT:
        return SendOutcome(_fail(delivery.pk, stamp, f"gave up after {attempts} attempts: {summary}"))
    if kind == providers.REFUSED:
        address_suppress(email=delivery.subscriber.email, reason="refused by the email provider")
        return SendOutcome(_fail(delivery.pk, stamp, f"recipient refused: {summary}"))
    if kind == providers.PERMANENT:
        return SendOutcome(_fail(delivery.pk, stamp, summary))
    # We cannot tell whether the provider took it: at most once, staff decide (docs/scheduler.md).
    return SendOutcome(_fail(delivery.pk, stamp, f"unknown outcome: {summary}"))


# --- a batch ----------------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    counts: dict[str, int] = field(default_factory=dict)
    retry_ids: list[int] = field(default_factory=list)
    retry_countdown: float = 0.0


def deliveries_send(*, delivery_ids: list[int]) -> BatchOutcome:
    """Send a batch. On a transient error the rest of the batch backs off with the failed
    delivery (a provider answering 429 or 500 is not hammered): the caller re-enqueues
    `retry_ids` after `retry_countdown`. Ids already sent are never in it.

    With a backend whose batch endpoint we use (batch_endpoint), the batch goes out as
    few ESP calls; with any other backend, one call per email, in order."""
    # One connection per batch; EMAIL_TIMEOUT bounds each provider call (anymail and SMTP alike).
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    endpoint = providers.batch_endpoint()
    with connection:
        if endpoint is None:
            outcome = _send_one_by_one(delivery_ids, connection=connection)
        else:
            outcome = _send_in_batch_calls(delivery_ids, connection=connection, endpoint=endpoint)
    logger.info("send batch size=%d outcome=%s retry=%d", len(delivery_ids), outcome.counts, len(outcome.retry_ids))
    return outcome


def _count(outcome: BatchOutcome, status: str, n: int = 1) -> None:
    outcome.counts[status] = outcome.counts.get(status, 0) + n


def _send_one_by_one(delivery_ids: list[int], *, connection) -> BatchOutcome:
    outcome = BatchOutcome()
    for index, delivery_id in enumerate(delivery_ids):
        result = delivery_send(delivery_id=delivery_id, connection=connection)
        _count(outcome, result.status)
        if result.status == RETRY:
            outcome.retry_ids = [delivery_id, *delivery_ids[index + 1 :]]
            outcome.retry_countdown = result.countdown
            break
    return outcome


# --- batch calls (an ESP batch endpoint, through anymail's merge_data; nurture.providers says which) -

def _claim_and_check(delivery_id: int, outcome: BatchOutcome) -> ClaimedDelivery | None:
    """delivery_send's claim and re-check (one function), counted for the batch: the claimed row, or None."""
    claimed, settled = delivery_claim_and_check(delivery_id=delivery_id)
    if claimed is None:
        _count(outcome, settled)
    return claimed


def group_for_batch_calls(claimed: list[ClaimedDelivery], *, limit: int = providers.DEFAULT_BATCH_RECIPIENTS) -> list[list[ClaimedDelivery]]:
    """One call per identical body: same step, language and article versions (the render cache's
    key). Each address at most once per call (the ESP keys merge data by address) and at most
    `limit` recipients. Order within a call follows the batch."""
    calls_by_body: dict[tuple, list[list[ClaimedDelivery]]] = {}
    for item in claimed:
        key = step_body_key(step=item.delivery.step, articles=item.articles)
        calls = calls_by_body.setdefault(key, [])
        address = item.delivery.subscriber.email.lower()
        for call in calls:
            if len(call) < limit and all(other.delivery.subscriber.email.lower() != address for other in call):
                call.append(item)
                break
        else:
            calls.append([item])
    return [call for calls in calls_by_body.values() for call in calls]


def _release(items: list[ClaimedDelivery], countdown: float = 0.0) -> list[int]:
    """Back to queued, untouched by the provider (never handed over): a later claim sends them."""
    released = []
    for item in items:
        if claimed_row(item.delivery.pk, item.stamp).update(
            status=Delivery.Status.QUEUED, next_attempt_at=timezone.now() + timedelta(seconds=countdown)
        ):
            released.append(item.delivery.pk)
    return released


def _send_in_batch_calls(delivery_ids: list[int], *, connection, endpoint: providers.BatchEndpoint) -> BatchOutcome:
    outcome = BatchOutcome()
    claimed = [item for item in (_claim_and_check(i, outcome) for i in delivery_ids) if item is not None]
    # A call carries at most one rate-limit window's worth of emails: its slots are taken at once.
    calls = group_for_batch_calls(claimed, limit=min(endpoint.max_recipients, throttle.max_emails_per_call()))
    for index, call in enumerate(calls):
        countdown = _send_batch_call(call, connection=connection, endpoint=endpoint, outcome=outcome)
        if countdown is not None:  # transient: the rest backs off with this call
            later = [item for rest in calls[index + 1 :] for item in rest]
            outcome.retry_ids += _release(later, countdown)
            outcome.retry_countdown = countdown
            break
    return outcome


def _send_batch_call(call: list[ClaimedDelivery], *, connection, endpoint: providers.BatchEndpoint, outcome: BatchOutcome) -> float | None:
    """One ESP call for `call`. Returns the retry countdown after a transient error, else None."""
    deliveries = [item.delivery for item in call]
    try:
        message = build_batch_email(deliveries, articles=call[0].articles, field_format=endpoint.merge_field_format)
    except NotBatchable:
        logger.info("batch call of %d not batchable; sending one by one", len(call))
        retry = _send_one_by_one(_release(call), connection=connection)
        for status, n in retry.counts.items():
            _count(outcome, status, n)
        outcome.retry_ids += retry.retry_ids
        return retry.retry_countdown if retry.retry_ids else None
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building a batch of %d failed", len(call))
        for item in call:
            _count(outcome, _fail(item.delivery.pk, item.stamp, f"could not build the email: {_error_summary(exc)}"))
        return None
    message.connection = connection

    throttle.wait_for_send_slots(len(call))  # one slot per email: the ceiling is emails per second
    # The last moment before the provider may have them; only rows whose claim still holds go.
    started = timezone.now()
    handed = []
    for item in call:
        address = item.delivery.subscriber.email
        if claimed_row(item.delivery.pk, item.stamp).update(
            provider_call_started_at=started,
            message_id=message.merge_headers[address]["Message-ID"],
            attempts=item.delivery.attempts + 1,
        ):
            handed.append(item)
        else:
            _count(outcome, NOT_CLAIMED)
            message.to.remove(address)
            for table in (message.merge_data, message.merge_headers, message.merge_metadata):
                table.pop(address)
    if not handed:
        return None
    try:
        message.send()
    except Exception as exc:
        results = [_after_error(item.delivery, item.stamp, exc, attempts=item.delivery.attempts + 1) for item in handed]
        for result in results:
            _count(outcome, result.status)
        retry = [item.delivery.pk for item, result in zip(handed, results) if result.status == RETRY]
        if not retry:
            return None
        outcome.retry_ids += retry
        return max(result.countdown for result in results)
    _record_batch_answer(handed, message, outcome, ids_per_recipient=endpoint.ids_per_recipient)
    return None


def _record_batch_answer(handed: list[ClaimedDelivery], message, outcome: BatchOutcome, *, ids_per_recipient: bool) -> None:
    """Each recipient's answer. Accepted rows are written in one UPDATE straight after the call
    (the reconciler trusts it); refused addresses are suppressed, invalid ones fail."""
    recipients = message.anymail_status.recipients
    answers = {item.delivery.pk: recipients.get(item.delivery.subscriber.email) for item in handed}
    accepted, refused, invalid = {}, [], []
    for item in handed:
        answer = answers[item.delivery.pk]
        status = answer.status if answer is not None else "unknown"
        if status == "rejected":
            refused.append(item)
        elif status in ("invalid", "failed"):
            invalid.append((item, status))
        else:  # queued / sent / unknown: the provider took it
            provider_id = str(answer.message_id) if answer is not None and answer.message_id else ""
            header_id = message.merge_headers[item.delivery.subscriber.email]["Message-ID"]
            accepted[item.delivery.pk] = provider_id if ids_per_recipient and provider_id else header_id
    if accepted:
        deliveries_mark_sent(
            provider_message_ids=accepted, sent_at=timezone.now(), article_versions=message.nurture_article_versions
        )
        _count(outcome, Delivery.Status.SENT, len(accepted))
    for item in refused:
        address_suppress(email=item.delivery.subscriber.email, reason="refused by the email provider")
        _count(outcome, _fail(item.delivery.pk, item.stamp, "recipient refused by the provider"))
    for item, status in invalid:
        _count(outcome, _fail(item.delivery.pk, item.stamp, f"the provider answered {status} for this recipient"))


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


def carer_confirmation_email_send(*, handoff_id: int) -> bool:
    """The carer's confirmation email, while the request is still waiting for them (not stopped or
    replaced meanwhile) and their address is not suppressed."""
    handoff = CarerHandoff.objects.select_related("subscriber").filter(pk=handoff_id, status=CarerHandoff.Status.PENDING).first()
    if handoff is None or selectors.is_suppressed(email=handoff.carer_email):
        return False
    build_carer_confirmation_email(handoff).send()
    return True
