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
from django.db.models import Case, CharField, Value, When
from django.utils import timezone

from nurture import emails, selectors
from nurture.models import Delivery, Subscriber
from nurture.services import throttle
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


def _recheck(delivery: Delivery) -> tuple[str, list]:
    """Checked again just before sending, not only at planning: they may have left, paused, moved
    to another series or bounced since. Returns (reason to skip, "" if none) and the articles to
    send: only those planned for this delivery (never one they already had), still published."""
    subscriber = delivery.subscriber
    if subscriber.status != Subscriber.Status.ACTIVE:
        return f"subscriber is {subscriber.status}", []
    if delivery.step.series_id != subscriber.series_id:
        return "subscriber moved to another series", []
    if selectors.is_suppressed(email=subscriber.email):
        return "address is suppressed", []
    articles = selectors.delivery_articles(delivery=delivery)
    if not articles:
        return "no published article left in this step", []
    return "", articles


def send_delivery(*, delivery_id: int, connection=None, wait_for_slot=throttle.wait_for_send_slot) -> SendOutcome:
    stamp = delivery_claim(delivery_id=delivery_id)
    if stamp is None:
        return SendOutcome("not-claimed")  # sent, being sent, or settled: the claim keeps it once
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)
    reason, articles = _recheck(delivery)
    if reason:
        return SendOutcome(_finish(delivery_id, stamp, Delivery.Status.SKIPPED, reason))
    try:
        message = emails.build_delivery_email(delivery, articles=articles)
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building delivery=%s failed", delivery_id)
        return SendOutcome(_finish(delivery_id, stamp, Delivery.Status.FAILED, f"could not build the email: {_error_summary(exc)}"))
    message.connection = connection
    versions = message.nurture_article_versions

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
    Subscriber.objects.filter(pk=delivery.subscriber_id).update(last_sent_at=now)
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
    """Send a batch. On a transient error the rest of the batch backs off with the failed
    delivery (a provider answering 429 or 500 is not hammered): the caller re-enqueues
    `retry_ids` after `retry_countdown`. Ids already sent are never in it.

    With a backend whose batch endpoint we use (batch_endpoint), the batch goes out as
    few ESP calls; with any other backend, one call per email, in order."""
    # One connection per batch; EMAIL_TIMEOUT bounds each provider call (anymail and SMTP alike).
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    endpoint = batch_endpoint()
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
        result = send_delivery(delivery_id=delivery_id, connection=connection)
        _count(outcome, result.status)
        if result.status == RETRY:
            outcome.retry_ids = [delivery_id, *delivery_ids[index + 1 :]]
            outcome.retry_countdown = result.countdown
            break
    return outcome


# --- batch calls (an ESP batch endpoint, through anymail's merge_data) ------------------------------

@dataclass(frozen=True)
class BatchEndpoint:
    merge_field_format: str  # the ESP's merge-field syntax, "{}" standing for the field's name
    # Whether each delivery keeps the id the send response gives its recipient (what the ESP's
    # webhooks report). If not, it keeps our Message-ID header, which the webhooks report instead.
    ids_per_recipient: bool
    # Text that makes the ESP see a merge field: content holding it goes one by one.
    syntax_marker: str = ""
    # Whether a value holding the marker could be read as syntax too (then it goes one by one as
    # well). SparkPost inserts values once and never reads them again; Mailgun is not documented
    # either way, so it is assumed to.
    values_may_be_read: bool = True
    max_recipients: int = 1000  # per call


# anymail backends whose batch endpoint fills per-recipient values into one body without a stored
# template (docs/scheduler.md, "Batch endpoints", says why the others do not qualify).
# Mailgun: %recipient.KEY% from "recipient-variables"; one id for the whole call, and its
# webhooks report each message by our Message-ID header, so each delivery keeps that.
# SparkPost: handlebars {{{KEY}}} (triple braces: inserted as given; our values are escaped
# already) from each recipient's substitution_data. Its webhooks report the transmission id (the
# id anymail gives every recipient of the call) with the recipient's metadata, so each delivery
# keeps the transmission id and the webhook matcher picks the delivery by its metadata.
MAILGUN_BACKEND = "anymail.backends.mailgun.EmailBackend"
SPARKPOST_BACKEND = "anymail.backends.sparkpost.EmailBackend"
BATCH_ENDPOINTS = {
    MAILGUN_BACKEND: BatchEndpoint(merge_field_format="%recipient.{}%", ids_per_recipient=False, syntax_marker="%recipient."),
    SPARKPOST_BACKEND: BatchEndpoint(
        merge_field_format="{{{{{{{}}}}}}}", ids_per_recipient=True, syntax_marker="{{", values_may_be_read=False
    ),
}
ESP_BATCH_LIMIT = 1000  # the most recipients any call carries


def batch_endpoint() -> BatchEndpoint | None:
    """The configured backend's batch endpoint, or None: send one by one."""
    if not settings.NURTURE_BATCH_SEND:
        return None
    return BATCH_ENDPOINTS.get(settings.EMAIL_BACKEND)


@dataclass
class ClaimedDelivery:
    delivery: Delivery
    stamp: datetime
    articles: list


def _claim_and_check(delivery_id: int, outcome: BatchOutcome) -> ClaimedDelivery | None:
    """send_delivery's claim and re-checks, without the send: the claimed row, or None (settled)."""
    stamp = delivery_claim(delivery_id=delivery_id)
    if stamp is None:
        _count(outcome, "not-claimed")
        return None
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)
    reason, articles = _recheck(delivery)
    if reason:
        _count(outcome, _finish(delivery_id, stamp, Delivery.Status.SKIPPED, reason))
        return None
    return ClaimedDelivery(delivery, stamp, articles)


def group_for_batch_calls(claimed: list[ClaimedDelivery], *, limit: int = ESP_BATCH_LIMIT) -> list[list[ClaimedDelivery]]:
    """One call per identical body: same step, language and article versions (the render cache's
    key). Each address at most once per call (the ESP keys merge data by address) and at most
    `limit` recipients. Order within a call follows the batch."""
    calls_by_body: dict[tuple, list[list[ClaimedDelivery]]] = {}
    for item in claimed:
        step = item.delivery.step
        key = emails.cache_key(step=step, articles=item.articles, language=emails.step_language(step))
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
        if _mine(item.delivery.pk, item.stamp).update(
            status=Delivery.Status.QUEUED, next_attempt_at=timezone.now() + timedelta(seconds=countdown)
        ):
            released.append(item.delivery.pk)
    return released


def _send_in_batch_calls(delivery_ids: list[int], *, connection, endpoint: BatchEndpoint) -> BatchOutcome:
    outcome = BatchOutcome()
    claimed = [item for item in (_claim_and_check(i, outcome) for i in delivery_ids) if item is not None]
    # A call carries at most one rate-limit window's worth of emails: its slots are taken at once.
    calls = group_for_batch_calls(claimed, limit=min(ESP_BATCH_LIMIT, endpoint.max_recipients, throttle.max_emails_per_call()))
    for index, call in enumerate(calls):
        countdown = _send_batch_call(call, connection=connection, endpoint=endpoint, outcome=outcome)
        if countdown is not None:  # transient: the rest backs off with this call
            later = [item for rest in calls[index + 1 :] for item in rest]
            outcome.retry_ids += _release(later, countdown)
            outcome.retry_countdown = countdown
            break
    return outcome


def _send_batch_call(call: list[ClaimedDelivery], *, connection, endpoint: BatchEndpoint, outcome: BatchOutcome) -> float | None:
    """One ESP call for `call`. Returns the retry countdown after a transient error, else None."""
    deliveries = [item.delivery for item in call]
    try:
        message = emails.build_batch_email(
            deliveries, articles=call[0].articles, field_format=endpoint.merge_field_format, marker=endpoint.syntax_marker,
            check_values=endpoint.values_may_be_read,
        )
    except emails.NotBatchable:
        logger.info("batch call of %d not batchable; sending one by one", len(call))
        retry = _send_one_by_one(_release(call), connection=connection)
        for status, n in retry.counts.items():
            _count(outcome, status, n)
        outcome.retry_ids += retry.retry_ids
        return retry.retry_countdown if retry.retry_ids else None
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building a batch of %d failed", len(call))
        for item in call:
            _count(outcome, _finish(item.delivery.pk, item.stamp, Delivery.Status.FAILED, f"could not build the email: {_error_summary(exc)}"))
        return None
    message.connection = connection

    throttle.wait_for_send_slots(len(call))  # one slot per email: the ceiling is emails per second
    # The last moment before the provider may have them; only rows whose claim still holds go.
    started = timezone.now()
    handed = []
    for item in call:
        address = item.delivery.subscriber.email
        if _mine(item.delivery.pk, item.stamp).update(
            provider_call_started_at=started,
            message_id=message.merge_headers[address]["Message-ID"],
            attempts=item.delivery.attempts + 1,
        ):
            handed.append(item)
        else:
            _count(outcome, "not-claimed")
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
    now = timezone.now()
    if accepted:
        Delivery.objects.filter(pk__in=accepted).update(
            status=Delivery.Status.SENT, sent_at=now, article_versions=message.nurture_article_versions, failure_reason="",
            provider_message_id=Case(*(When(pk=pk, then=Value(mid)) for pk, mid in accepted.items()), output_field=CharField()),
        )
        Subscriber.objects.filter(deliveries__pk__in=accepted).update(last_sent_at=now)
        _count(outcome, Delivery.Status.SENT, len(accepted))
    for item in refused:
        address_suppress(email=item.delivery.subscriber.email, reason="refused by the email provider")
        _count(outcome, _finish(item.delivery.pk, item.stamp, Delivery.Status.FAILED, "recipient refused by the provider"))
    for item, status in invalid:
        _count(outcome, _finish(item.delivery.pk, item.stamp, Delivery.Status.FAILED, f"the provider answered {status} for this recipient"))


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


def send_confirmation(*, subscriber_id: int) -> bool:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is None or selectors.is_suppressed(email=subscriber.email):
        return False
    emails.build_confirmation_email(subscriber).send()
    return True
