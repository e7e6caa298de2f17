"""What every way of calling the provider shares (one call per email, nurture/sending/calls.py; batch
calls, nurture/sending/batch_calls.py): the batch's outcome and its backoff, building each email,
stamping the rows about to be handed over, and recording the answers of calls that returned
(through the ledger, nurture/sending/ledger.py)."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from nurture import metrics
from nurture.emails.links import url_setting
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery
from nurture.providers import BULK, message_stream_set
from nurture.send_errors import PERMANENT, REFUSED, TRANSIENT, classify_send_error
from nurture.sending.db_retry import with_db_retry
from nurture.sending.ledger import (
    NOT_CLAIMED,
    Claimed,
    SentAnswer,
    deliveries_back_off,
    deliveries_record_sent,
    deliveries_release,
    deliveries_settle,
    deliveries_stamp_handed,
)
from nurture.sending.signals import carer_address_refused
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

RETRY = "retry"


def retry_countdown(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, then a random point in its
    upper half so a crowd of retries spreads out instead of returning together."""
    ceiling = min(settings.NURTURE_RETRY_MAX_SECONDS, settings.NURTURE_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def release_countdown() -> float:
    """After an infrastructure error: a short pause, jittered, the same for the whole batch."""
    base = settings.NURTURE_RELEASE_BACKOFF_SECONDS
    return random.uniform(base / 2, base)


def error_summary(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"[:500]


@dataclass
class BatchOutcome:
    counts: dict[str, int] = field(default_factory=dict)
    retry_ids: list[int] = field(default_factory=list)  # re-enqueue these after retry_countdown
    retry_countdown: float = 0.0
    error: BaseException | None = None  # an infrastructure error: the task fails after re-enqueueing

    def count(self, status: str, n: int = 1) -> None:
        if n:
            key = str(status)  # "sent", not Delivery.Status.SENT, in logs and task results
            self.counts[key] = self.counts.get(key, 0) + n


def _provider_id(message) -> str:
    status = getattr(message, "anymail_status", None)
    return str(status.message_id) if status is not None and status.message_id else ""


def record_answers(results: list[tuple[Claimed, BaseException | None]], *, stamp: datetime,
                   outcome: BatchOutcome) -> float | None:
    """Write the answers of calls that returned: accepted ones first (never lost: retried, then
    journalled), then errors. Returns a backoff countdown if the provider answered a transient
    error, else None."""
    accepted = [
        SentAnswer(item.pk, item.delivery.subscriber_id, _provider_id(item.message),
                   item.message.nurture_article_versions)
        for item, exc in results if exc is None
    ]
    deliveries_record_sent(answers=accepted)
    outcome.count(Delivery.Status.SENT, len(accepted))
    countdown = None
    for item, exc in results:
        if exc is None:
            continue
        kind, summary = classify_send_error(exc), error_summary(exc)
        attempts = item.delivery.attempts + 1
        logger.warning(
            "send delivery=%s attempt=%d error kind=%s type=%s status=%s", item.pk, attempts, kind, type(exc).__name__,
            getattr(exc, "status_code", None), extra={"delivery_id": item.pk},
        )
        metrics.count_provider_error(kind)
        status, reason = _settle_error(item, kind, summary, attempts)
        if status == RETRY:
            wait = retry_countdown(attempts)
            countdown = wait if countdown is None else max(countdown, wait)
            with_db_retry(lambda: deliveries_release(delivery_ids=[item.pk], stamp=stamp, countdown=wait, reason=reason,
                                                     handed=True), what="retry later")
        else:
            with_db_retry(lambda: deliveries_settle(delivery_ids=[item.pk], stamp=stamp, status=status, reason=reason),
                          what="recording an error")
        outcome.count(status)
    return countdown


def _settle_error(item: Claimed, kind: str, summary: str, attempts: int) -> tuple[str, str]:
    if kind == TRANSIENT and attempts < settings.NURTURE_SEND_MAX_ATTEMPTS:
        return RETRY, f"attempt {attempts}: {summary}"
    if kind == TRANSIENT:
        return Delivery.Status.FAILED, f"gave up after {attempts} attempts: {summary}"
    if kind == REFUSED:
        with_db_retry(lambda: address_suppress(email=item.delivery.to_address, reason="refused by the email provider",
                                               source="provider_refused"), what="suppressing")
        if item.delivery.carer_handoff_id:  # the carer's address: their hand-off ends, the subscriber is told
            carer_address_refused.send(sender=Delivery, handoff_id=item.delivery.carer_handoff_id)
        return Delivery.Status.FAILED, f"recipient refused: {summary}"
    if kind == PERMANENT:
        return Delivery.Status.FAILED, summary
    # No answer we can read (a read timeout): the provider may have it. Never resent blindly; the
    # provider's webhook settles it, or the reconciler fails it after NURTURE_UNKNOWN_OUTCOME_SECONDS.
    return Delivery.Status.UNKNOWN, f"unknown outcome: {summary}"


def _build(item: Claimed, where: tuple) -> bool:
    try:
        item.message = build_delivery_email(item.delivery, articles=item.articles, to=item.recipients, where=where)
        message_stream_set(item.message, stream=BULK)  # series emails go on the provider's bulk path
        return True
    except Exception:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building delivery=%s failed", item.pk, extra={"delivery_id": item.pk})
        return False


def back_off_together(outcome: BatchOutcome, ids: list[int], countdown: float) -> None:
    """Every row of the batch that went back to queued carries the same next_attempt_at: the
    batch's backoff, which the reconciler respects; the task re-enqueues them after it."""
    back = with_db_retry(lambda: deliveries_back_off(delivery_ids=ids, countdown=countdown), what="back off")
    outcome.retry_ids = sorted(set(outcome.retry_ids) | set(back))
    outcome.retry_countdown = max(outcome.retry_countdown, countdown)


def build_each(chunk: list[Claimed], *, stamp, outcome: BatchOutcome) -> list[Claimed]:
    """Build each delivery's own email; the ones that cannot be built fail with the reason."""
    where = url_setting()  # the URL configuration links are made under: one read for the chunk
    built = [item for item in chunk if _build(item, where)]
    broken = [item.pk for item in chunk if item.message is None]
    if broken:
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=broken, stamp=stamp, status=Delivery.Status.FAILED,
            reason="could not build the email"), what="build failed"))
    return built


def stamp_handed(items: list[Claimed], *, stamp, outcome: BatchOutcome) -> list[Claimed]:
    """Mark the rows about to go to the provider (one UPDATE); the ones our claim no longer holds drop out."""
    handed = with_db_retry(lambda: deliveries_stamp_handed(items=items, stamp=stamp), what="stamp")
    outcome.count(NOT_CLAIMED, len(items) - len(handed))
    return handed
