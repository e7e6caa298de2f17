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
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from nurture import emails, selectors
from nurture.models import Delivery, Subscriber
from nurture.services import planning, throttle
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

TRANSIENT = "transient"
PERMANENT = "permanent"
REFUSED = "refused"
UNKNOWN = "unknown"
RETRY = "retry"


def classify_send_error(exc: BaseException) -> str:
    """transient: try again later; permanent: the provider said no to this message; refused: the
    provider will not write to this address; unknown: we cannot tell whether it went."""
    if isinstance(exc, AnymailRecipientsRefused) or isinstance(exc, smtplib.SMTPRecipientsRefused):
        return REFUSED
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        if status is None:  # no HTTP answer: anymail wraps requests' timeout/connection errors
            return TRANSIENT if isinstance(exc, (requests.ConnectionError, requests.Timeout)) else UNKNOWN
        return TRANSIENT if status == 429 or status >= 500 else PERMANENT
    if isinstance(exc, AnymailError):  # anymail's own checks (unsupported feature, bad address...)
        return PERMANENT
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, socket.timeout, TimeoutError)):
        return TRANSIENT
    if isinstance(exc, smtplib.SMTPResponseException):
        return TRANSIENT if 400 <= exc.smtp_code < 500 else PERMANENT
    return UNKNOWN


def retry_countdown(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, then a random point in its
    upper half so a crowd of retries spreads out instead of returning together."""
    ceiling = min(settings.NURTURE_RETRY_MAX_SECONDS, settings.NURTURE_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def _error_summary(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"[:500]


# --- state changes, each one conditional UPDATE -----------------------------------------------------


def delivery_claim(*, delivery_id: int) -> datetime | None:
    """queued -> sending in one UPDATE, so two workers never take the same row. Returns the claim
    stamp (sending_started_at) that later writes check, or None if the row was not queued."""
    stamp = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, sending_started_at=stamp, provider_call_started_at=None
    )
    return stamp if claimed else None


def _mine(delivery_id: int, stamp: datetime):
    return Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING, sending_started_at=stamp)


def _finish(delivery_id: int, stamp: datetime, status: str, reason: str) -> str:
    now = timezone.now()
    _mine(delivery_id, stamp).update(
        status=status, failure_reason=reason, failed_at=now if status == Delivery.Status.FAILED else None
    )
    return status


# --- one delivery -----------------------------------------------------------------------------------


@dataclass
class SendOutcome:
    status: str  # a Delivery.Status, "not-claimed", or "retry"
    countdown: float = 0.0


def send_delivery(*, delivery_id: int, connection=None, wait_for_slot=throttle.wait_for_send_slot) -> SendOutcome:
    stamp = delivery_claim(delivery_id=delivery_id)
    if stamp is None:
        return SendOutcome("not-claimed")  # sent, being sent, or settled: the claim keeps it once
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)
    subscriber = delivery.subscriber
    # Checked again here, not only at planning: they may have left or bounced since.
    if subscriber.status != Subscriber.Status.ACTIVE:
        return SendOutcome(_finish(delivery_id, stamp, Delivery.Status.SKIPPED, f"subscriber is {subscriber.status}"))
    if selectors.is_suppressed(email=subscriber.email):
        return SendOutcome(_finish(delivery_id, stamp, Delivery.Status.SKIPPED, "address is suppressed"))
    # Only the articles planned for this delivery (never one they already had), still published.
    articles = planning.delivery_articles(delivery=delivery)
    if not articles:
        return SendOutcome(_finish(delivery_id, stamp, Delivery.Status.SKIPPED, "no published article left in this step"))
    try:
        message = emails.build_delivery_email(delivery, articles=articles)
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building delivery=%s failed", delivery_id)
        return SendOutcome(_finish(delivery_id, stamp, Delivery.Status.FAILED, f"could not build the email: {_error_summary(exc)}"))
    message.connection = connection
    versions = getattr(message, "nurture_article_versions", None) or {str(a.pk): a.version for a in articles}

    wait_for_slot()  # the provider's sends-per-second ceiling, shared by all workers
    # The last moment before the provider may have it. Only if our claim still holds (the
    # reconciler may have taken a row stuck too long); from here an unknown end is not resent.
    handed = _mine(delivery_id, stamp).update(
        provider_call_started_at=timezone.now(),
        message_id=message.extra_headers.get("Message-ID", ""),
        attempts=delivery.attempts + 1,
    )
    if not handed:
        return SendOutcome("not-claimed")
    try:
        message.send()
    except Exception as exc:
        return _after_error(delivery, stamp, exc, attempts=delivery.attempts + 1)

    # Persist the provider's answer first, in one statement: the reconciler trusts it.
    status = getattr(message, "anymail_status", None)
    provider_id = str(status.message_id or "") if status is not None and status.message_id else ""
    now = timezone.now()
    Delivery.objects.filter(pk=delivery_id).update(
        status=Delivery.Status.SENT, sent_at=now, provider_message_id=provider_id, article_versions=versions, failure_reason=""
    )
    Subscriber.objects.filter(pk=subscriber.pk).update(last_sent_at=now)
    return SendOutcome(Delivery.Status.SENT)


def _after_error(delivery: Delivery, stamp: datetime, exc: BaseException, *, attempts: int) -> SendOutcome:
    kind = classify_send_error(exc)
    summary = _error_summary(exc)
    logger.warning("send delivery=%s attempt=%d error kind=%s type=%s status=%s", delivery.pk, attempts, kind, type(exc).__name__, getattr(exc, "status_code", None))
    if kind == TRANSIENT and attempts < settings.NURTURE_SEND_MAX_ATTEMPTS:
        countdown = retry_countdown(attempts)
        # Back to queued: the provider did not take it. A later claim sends it (once).
        _mine(delivery.pk, stamp).update(
            status=Delivery.Status.QUEUED,
            provider_call_started_at=None,
            next_attempt_at=timezone.now() + timedelta(seconds=countdown),
            failure_reason=f"attempt {attempts}: {summary}",
        )
        return SendOutcome(RETRY, countdown)
    if kind == TRANSIENT:
        return SendOutcome(_finish(delivery.pk, stamp, Delivery.Status.FAILED, f"gave up after {attempts} attempts: {summary}"))
    if kind == REFUSED:
        address_suppress(email=delivery.subscriber.email, reason="refused by the email provider")
        return SendOutcome(_finish(delivery.pk, stamp, Delivery.Status.FAILED, f"recipient refused: {summary}"))
    if kind == PERMANENT:
        return SendOutcome(_finish(delivery.pk, stamp, Delivery.Status.FAILED, summary))
    # We cannot tell whether the provider took it: at most once, staff decide (docs/scheduler.md).
    return SendOutcome(_finish(delivery.pk, stamp, Delivery.Status.FAILED, f"unknown outcome: {summary}"))


# --- a batch ----------------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    counts: dict[str, int] = field(default_factory=dict)
    retry_ids: list[int] = field(default_factory=list)
    retry_countdown: float = 0.0


def send_deliveries(*, delivery_ids: list[int]) -> BatchOutcome:
    """Send a batch in order. On a transient error the rest of the batch backs off with the
    failed delivery (a provider answering 429 or 500 is not hammered): the caller re-enqueues
    `retry_ids` after `retry_countdown`. Ids already sent are never in it."""
    outcome = BatchOutcome()
    # One connection per batch; EMAIL_TIMEOUT bounds each provider call (anymail and SMTP alike).
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    with connection:
        for index, delivery_id in enumerate(delivery_ids):
            result = send_delivery(delivery_id=delivery_id, connection=connection)
            outcome.counts[result.status] = outcome.counts.get(result.status, 0) + 1
            if result.status == RETRY:
                outcome.retry_ids = [delivery_id, *delivery_ids[index + 1 :]]
                outcome.retry_countdown = result.countdown
                break
    logger.info("send batch size=%d outcome=%s retry=%d", len(delivery_ids), outcome.counts, len(outcome.retry_ids))
    return outcome


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
        failure_reason="requeued by staff",
    )
    if ids:
        transaction.on_commit(lambda: enqueue(ids))
    return len(ids)


def send_confirmation(*, subscriber_id: int) -> bool:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is None or selectors.is_suppressed(email=subscriber.email):
        return False
    emails.build_confirmation_email(subscriber).send()
    return True
