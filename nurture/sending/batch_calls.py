"""Batch calls where the provider has them, in two kinds (docs/scheduler.md, "Batch endpoints"):

- a merge-field endpoint (anymail's merge_data; Mailgun, SparkPost, SendGrid): a send batch goes out
  as a few calls, one per identical body, the ESP filling in each recipient's values;
- a messages endpoint (Postmark's /email/batch, Resend's /emails/batch): each delivery's own email,
  built as for a single call and turned into the provider's JSON by anymail's payload code, up to
  the endpoint's limit per request; the answer, one entry per message in order, is mapped back to
  the deliveries one by one (a message refused inside the batch fails alone).

Each call carries at most one rate-limit window's worth of emails. The calls of a batch overlap:
the next is built while the one before it is at the provider (nurture/sending/batch_flight.py); a
batch that one call carries stays one call (Postmark: 500), as the provider asks.
The claim, re-check, stamp and record are the same as for one call per email
(nurture/sending/handover.py, nurture/sending/ledger.py).
"""
from __future__ import annotations

import logging
from datetime import datetime

from anymail.exceptions import AnymailAPIError

from nurture import metrics, providers
from nurture.emails.cache import step_body_key
from nurture.emails.encoded import serialised
from nurture.emails.merge import NotBatchable, build_batch_email
from nurture.models import Delivery
from nurture.sending.batch_flight import BackedOff, Call, make_calls
from nurture.sending.calls import Slots, send_one_by_one
from nurture.sending.db_retry import with_db_retry
from nurture.sending.handover import BatchOutcome, build_each, error_summary, stamp_handed
from nurture.sending.ledger import (
    NOT_CLAIMED, Claimed, SentAnswer, deliveries_record_sent, deliveries_settle, deliveries_stamp_handed,
)
from nurture.services import throttle
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)


def group_for_batch_calls(claimed: list[Claimed], *, limit: int) -> list[list[Claimed]]:
    """One call per identical body: same step, language and article versions (the render cache's
    key). Each address at most once per call (the ESP keys merge data by address) and at most
    `limit` recipients. Order within a call follows the batch."""
    calls_by_body: dict[tuple, list[tuple[list[Claimed], set[str]]]] = {}
    for item in claimed:
        who = item.delivery.subscriber  # plain text or larger text: a body of its own
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
    """Through a merge-field endpoint: one call per identical body."""
    calls = group_for_batch_calls(items, limit=min(endpoint.max_recipients, throttle.max_emails_per_call()))
    make_calls(items, calls, stamp=stamp, outcome=outcome,
                build=lambda call, _connection: _build_batch_call(call, stamp=stamp, endpoint=endpoint,
                                                                  outcome=outcome),
                hand=lambda built: _hand_batch_call(built, stamp=stamp, endpoint=endpoint, outcome=outcome))


def send_in_messages_batches(items: list[Claimed], *, stamp: datetime, outcome: BatchOutcome, provider) -> None:
    """Through a messages endpoint: each delivery's own email, up to the endpoint's limit per call
    (a batch that one call carries stays one call: the provider asks for few, big calls)."""
    limit = max(1, min(provider.messages_batch.max_messages, throttle.max_emails_per_call()))
    calls = [items[start:start + limit] for start in range(0, len(items), limit)]
    make_calls(items, calls, stamp=stamp, outcome=outcome,
                build=lambda call, connection: _build_messages_call(call, stamp=stamp, connection=connection,
                                                                    provider=provider, outcome=outcome),
                hand=lambda built: _hand_messages_call(built, stamp=stamp, provider=provider, outcome=outcome))


# --- a merge-field endpoint ---------------------------------------------------------------------------


def _build_batch_call(call: list[Claimed], *, stamp, endpoint, outcome: BatchOutcome):
    """The call's one email with merge fields: (call, message); None if nothing is to be sent; a
    BackedOff if it was not batchable, went one by one, and met a transient error."""
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
        return BackedOff(sub.retry_countdown) if sub.retry_ids else None
    except Exception as exc:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building a batch of %d failed", len(call))
        reason = f"could not build the email: {error_summary(exc)}"
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[i.pk for i in call], stamp=stamp, status=Delivery.Status.FAILED,
            reason=reason), what="build failed"))
        return None
    message.esp_extra = {**(getattr(message, "esp_extra", None) or {}), **dict(endpoint.esp_extra)}
    providers.message_stream_set(message, stream=providers.BULK)
    for item in call:
        item.message = message
    return call, message


def _hand_batch_call(built, *, stamp, endpoint, outcome: BatchOutcome) -> Call | None:
    """The call's slots taken and its rows stamped; a row our claim no longer holds leaves the call."""
    call, message = built
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

    def post(connection):
        message.connection = connection
        message.send()
        return message

    return Call(handed, post, lambda _message: _record_batch_answer(
        handed, message, stamp=stamp, outcome=outcome, ids_per_recipient=endpoint.ids_per_recipient))


def _record_batch_answer(handed: list[Claimed], message, *, stamp, outcome: BatchOutcome,
                         ids_per_recipient: bool) -> None:
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
        with_db_retry(lambda: address_suppress(email=item.delivery.subscriber.email,
            reason="refused by the email provider", source="provider_refused"), what="suppressing")
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[item.pk], stamp=stamp, status=Delivery.Status.FAILED,
            reason="recipient refused by the provider"), what="refused"))
    for item, status in invalid:
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[item.pk], stamp=stamp, status=Delivery.Status.FAILED,
            reason=f"the provider answered {status} for this recipient"), what="invalid"))


# --- a messages endpoint ----------------------------------------------------------------------------


class _MessagesBatchPayload:
    """What anymail's backend posts (post_to_esp): the provider's batch request, made of the
    messages' own payloads (the first one's headers carry the credentials), each message's bodies
    written from the JSON made when they were rendered (nurture/emails/encoded.py)."""

    def __init__(self, template, messages: list[tuple[dict, object]], provider):
        self.template, self.messages, self.provider = template, messages, provider

    def get_request_params(self, api_url: str) -> dict:
        params = self.template.get_request_params(api_url)
        params["url"] = api_url + self.provider.messages_batch.path
        # As bytes, once (UTF-8, as requests encodes a str): requests and http.client would each
        # encode the str of about 5 MB again.
        params["data"] = self.serialised().encode("utf-8")
        return params

    def serialised(self) -> str:
        return serialised(self.messages, self.template.serialize_json, self.provider.batch_body)


def _payload_for(item: Claimed, connection, outcome: BatchOutcome, stamp):
    """anymail's payload for this delivery's email alone; None (and the delivery failed with the
    reason) if anymail will not build it."""
    try:
        return connection.build_message_payload(item.message, connection.send_defaults)
    except Exception as exc:  # anymail's checks (an unsupported feature, a bad address): nothing sent
        reason = f"could not build the email: {error_summary(exc)}"
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[item.pk], stamp=stamp, status=Delivery.Status.FAILED, reason=reason), what="build failed"))
        return None


def _messages_data(items, *, connection, provider, outcome: BatchOutcome, stamp) -> tuple[list, object]:
    """Each message's JSON: the first through anymail's payload code (also the call's template:
    credentials, URL, JSON encoding), each next one derived from it where the provider can do so
    exactly (providers.Provider.batch_message_like), else through anymail's payload code too."""
    built, template, first = [], None, None
    for item in items:
        data = provider.batch_message_like(first, item.message, connection.send_defaults) if first else None
        if data is None:
            payload = _payload_for(item, connection, outcome, stamp)
            if payload is None:
                continue
            data = provider.batch_message_data(payload)
            if template is None:
                template, first = payload, (item.message, data)
        built.append((item, data))
    return built, template


def _build_messages_call(call: list[Claimed], *, stamp, connection, provider, outcome: BatchOutcome):
    """Each delivery's email and its JSON: (built, template), or None if none could be built."""
    built, template = _messages_data(build_each(call, stamp=stamp, outcome=outcome), connection=connection,
                                     provider=provider, outcome=outcome, stamp=stamp)
    return (built, template) if built else None


def _hand_messages_call(built_call, *, stamp, provider, outcome: BatchOutcome) -> Call | None:
    """The call's slots taken and its rows stamped: one request with each handed delivery's message."""
    built, template = built_call
    Slots().take(len(built))  # one slot per email: the ceiling is emails per second
    handed = stamp_handed([item for item, _data in built], stamp=stamp, outcome=outcome)
    if not handed:
        return None
    held = {item.pk for item in handed}
    request = _MessagesBatchPayload(
        template, [(data, item.message) for item, data in built if item.pk in held], provider)

    def post(connection) -> list:
        response = connection.post_to_esp(request, None)
        answers = provider.batch_answers(connection.deserialize_json_response(response, request, None))
        if len(answers) != len(handed):
            # We cannot tell which answer is whose: the provider may have them all (unknown, never resent).
            raise AnymailAPIError(f"the provider answered {len(answers)} entries for {len(handed)} messages")
        return answers

    return Call(handed, post, lambda answers: _record_messages_answers(
        list(zip(handed, answers)), stamp=stamp, outcome=outcome))


def _record_messages_answers(pairs: list, *, stamp, outcome: BatchOutcome) -> None:
    """Each message's own answer, exactly once: accepted ones in one UPDATE; a refused address is
    suppressed (the message's own recipients: the subscriber or their carer); others fail alone."""
    accepted = [SentAnswer(item.pk, item.delivery.subscriber_id, answer.provider_id,
                           item.message.nurture_article_versions)
                for item, answer in pairs if answer.kind == providers.SENT]
    deliveries_record_sent(answers=accepted)
    outcome.count(Delivery.Status.SENT, len(accepted))
    for item, answer in pairs:
        _suppress_refused(item, answer)
        if answer.kind == providers.SENT:
            continue
        metrics.count_provider_error(answer.kind)
        if answer.kind == providers.REFUSED:
            reason = f"recipient refused: {answer.detail}"
        else:
            reason = f"the provider refused this message: {answer.detail}"
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=[item.pk], stamp=stamp, status=Delivery.Status.FAILED, reason=reason), what="message refused"))


def _suppress_refused(item: Claimed, answer) -> None:
    """The addresses the provider refused, among this message's own recipients (the subscriber or
    their carer): the ones it named; for a refused message naming none, all of them. A message to
    two addresses may be sent to one while the other is refused: only that one is suppressed."""
    ours = {address.lower(): address for address in item.message.to}
    named = [ours[address] for address in answer.refused if address in ours]
    for address in named or (item.message.to if answer.kind == providers.REFUSED else []):
        with_db_retry(lambda: address_suppress(email=address, reason="refused by the email provider"),
                      what="suppressing")
