"""Batch calls through an ESP's batch endpoint (anymail's merge_data; Mailgun): a send batch goes out
as a few calls, one per identical body, each carrying at most one rate-limit window's worth of
emails. The claim, re-check, stamp and record are the same as for one call per email
(services/send_calls.py, services/deliveries.py). docs/scheduler.md, "Batch endpoint".
"""
from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import get_connection

from nurture.emails.cache import step_body_key
from nurture.emails.merge import NotBatchable, build_batch_email
from nurture.models import Delivery
from nurture.services import throttle
from nurture.services.deliveries import Claimed, SentAnswer, deliveries_record_sent, deliveries_settle, deliveries_release, deliveries_stamp_handed, with_db_retry
from nurture.services.deliveries import NOT_CLAIMED
from nurture.services.send_calls import BatchOutcome, Slots, _back_off_together, _error_summary, _record, send_one_by_one
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)


def group_for_batch_calls(claimed: list[Claimed], *, limit: int) -> list[list[Claimed]]:
    """One call per identical body: same step, language and article versions (the render cache's
    key). Each address at most once per call (the ESP keys merge data by address) and at most
    `limit` recipients. Order within a call follows the batch."""
    calls_by_body: dict[tuple, list[tuple[list[Claimed], set[str]]]] = {}
    for item in claimed:
        who = item.delivery.subscriber  # plain text or larger text: a body of its own (issue 24)
        key = (*step_body_key(step=item.delivery.step, articles=item.articles), who.plain_text, who.larger_text)
        calls = calls_by_body.setdefault(key, [])
        address = item.delivery.subscriber.email.lower()
        for call, addresses in calls:
            if len(call) < limit and address not in addresses:
                call.append(item)
                addresses.add(address)
                break
        else:
            calls.append(([item], {address}))
    return [call for calls in calls_by_body.values() for call, _addresses in calls]


def send_in_batch_calls(items: list[Claimed], *, stamp: datetime, outcome: BatchOutcome, endpoint) -> None:
    # A call carries at most one rate-limit window's worth of emails: its slots are taken at once.
    calls = group_for_batch_calls(items, limit=min(endpoint.max_recipients, throttle.max_emails_per_call()))
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    with connection:
        for index, call in enumerate(calls):
            countdown = _send_batch_call(call, stamp=stamp, connection=connection, endpoint=endpoint, outcome=outcome)
            if countdown is not None:  # transient: the calls not made yet back off with this one
                later = [item.pk for rest in calls[index + 1 :] for item in rest]
                with_db_retry(lambda: deliveries_release(delivery_ids=later, stamp=stamp, countdown=countdown, handed=False), what="back off")
                _back_off_together(outcome, [item.pk for item in items], countdown)
                return


def _send_batch_call(call: list[Claimed], *, stamp, connection, endpoint, outcome: BatchOutcome) -> float | None:
    """One ESP call for `call`. Returns the retry countdown after a transient error, else None."""
    try:
        message = build_batch_email(
            [i.delivery for i in call], articles=call[0].articles, field_format=endpoint.merge_field_format,
            marker=endpoint.syntax_marker, check_values=endpoint.values_may_be_read,
            recipient_lists=[i.recipients for i in call] if all(i.recipients is not None for i in call) else None,
        )
    except NotBatchable:
        logger.info("batch call of %d not batchable; sending one by one", len(call))
        sub = BatchOutcome()
        send_one_by_one(call, stamp=stamp, outcome=sub, slots=Slots())
        for status, n in sub.counts.items():
            outcome.count(status, n)
        return sub.retry_countdown if sub.retry_ids else None
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building a batch of %d failed", len(call))
        reason = f"could not build the email: {_error_summary(exc)}"
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[i.pk for i in call], stamp=stamp, status=Delivery.Status.FAILED, reason=reason), what="build failed"))
        return None
    message.connection = connection
    for item in call:
        item.message = message
    Slots().take(len(call))  # one slot per email: the ceiling is emails per second
    handed = with_db_retry(lambda: deliveries_stamp_handed(items=call, stamp=stamp), what="stamp")
    held = {item.pk for item in handed}
    for item in call:
        if item.pk not in held:
            outcome.count(NOT_CLAIMED)
            address = item.delivery.subscriber.email
            message.to.remove(address)
            for table in (message.merge_data, message.merge_headers, message.merge_metadata):
                table.pop(address)
    if not handed:
        return None
    try:
        message.send()
    except Exception as exc:
        results = [(item, exc) for item in handed]
        return _record(results, stamp=stamp, outcome=outcome)
    _record_batch_answer(handed, message, stamp=stamp, outcome=outcome, ids_per_recipient=endpoint.ids_per_recipient)
    return None


def _record_batch_answer(handed: list[Claimed], message, *, stamp, outcome: BatchOutcome, ids_per_recipient: bool) -> None:
    """Each recipient's answer. Accepted rows are written in one UPDATE straight after the call;
    refused addresses are suppressed, invalid ones fail."""
    recipients = message.anymail_status.recipients
    accepted, refused, invalid = [], [], []
    for item in handed:
        address = item.delivery.subscriber.email
        answer = recipients.get(address)
        status = answer.status if answer is not None else "unknown"
        if status == "rejected":
            refused.append(item)
        elif status in ("invalid", "failed"):
            invalid.append((item, status))
        else:  # queued / sent / unknown: the provider took it
            provider_id = str(answer.message_id) if answer is not None and answer.message_id else ""
            header_id = message.merge_headers[address]["Message-ID"]
            accepted.append(SentAnswer(item.pk, item.delivery.subscriber_id,
                                       provider_id if ids_per_recipient and provider_id else header_id,
                                       message.nurture_article_versions))
    deliveries_record_sent(answers=accepted)
    outcome.count(Delivery.Status.SENT, len(accepted))
    for item in refused:
        with_db_retry(lambda: address_suppress(email=item.delivery.subscriber.email, reason="refused by the email provider"), what="suppressing")
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[item.pk], stamp=stamp, status=Delivery.Status.FAILED, reason="recipient refused by the provider"), what="refused"))
    for item, status in invalid:
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[item.pk], stamp=stamp, status=Delivery.Status.FAILED,
            reason=f"the provider answered {status} for this recipient"), what="invalid"))


