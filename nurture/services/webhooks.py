"""Provider webhooks: anymail parses each provider's payload into an AnymailTrackingEvent and
sends the `anymail.signals.tracking` signal; `tracking_event_record` stores it once and acts on it.

What each event does (docs/webhooks-and-retention.md):
- hard bounce, complaint, provider-side unsubscribe, rejected as invalid/bounced/spam: the address
  goes on the suppression list (services/suppression.py) and its subscriber is never planned again,
  but only when the event matches a message we sent to that address (`match_event`); any other
  event is stored with matched=False, shown to staff and not acted on;
- soft bounce (each provider's own marking: nurture.providers), deferred, delivered: stored only (figures);
- opened / clicked: stored only if the organisation turned that tracking on, for per-step figures.

Health data: only the event's kind, reason, time and the delivery it concerns are kept. Not the
recipient address, the raw payload, the click URL (our links carry personal tokens) or the user agent.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from nurture import providers
from nurture.models import Delivery, ProviderEvent
from nurture.selectors.deliveries import carer_copy_sent_to
from nurture.selectors.subscribers import subscriber_by_email
from nurture.services.brake import sending_brake_check
from nurture.services.carers import carer_address_failed
from nurture.sending import ANSWERABLE, delivery_settle_unknown
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

# Events that mean "never write to this address again", when their reason says so.
SUPPRESSING_TYPES = {EventType.BOUNCED, EventType.REJECTED, EventType.COMPLAINED, EventType.UNSUBSCRIBED}
# A reason that is about the address (not our content, our DNS, a virus scanner...).
SUPPRESSING_REASONS = {RejectReason.BOUNCED, RejectReason.INVALID, RejectReason.SPAM, RejectReason.UNSUBSCRIBED}
ENGAGEMENT_SETTING = {EventType.OPENED: "NURTURE_TRACK_OPENS", EventType.CLICKED: "NURTURE_TRACK_CLICKS"}
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


@dataclass(frozen=True)
class RecordResult:
    stored: bool  # False: a duplicate, or an engagement event while that tracking is off
    suppressed: bool = False


def _text(value, limit: int) -> str:
    # NUL characters dropped: PostgreSQL text refuses them (a 500, and the provider retrying for ever).
    return value.replace("\x00", "").strip()[:limit] if isinstance(value, str) else ""


def suppresses(event: AnymailTrackingEvent, *, provider: str) -> bool:
    if event.event_type in (EventType.COMPLAINED, EventType.UNSUBSCRIBED):
        return True
    if event.event_type not in SUPPRESSING_TYPES or providers.is_soft_bounce(provider=provider,
                                                                             esp_event=event.esp_event):
        return False
    return event.reject_reason in SUPPRESSING_REASONS


def _event_id(provider: str, event: AnymailTrackingEvent) -> str:
    """The provider's id, or a digest of the whole payload when there is none (Postmark gives ids
    to bounces only): the same webhook delivered twice gives the same digest."""
    given = _text(str(event.event_id) if event.event_id is not None else "", 200)
    if given and len(given) <= 100:
        return given
    try:
        payload = json.dumps(event.esp_event, sort_keys=True, default=str)
    except (TypeError, ValueError):
        payload = repr(event.esp_event)
    material = "|".join([provider, given, str(event.event_type), str(event.message_id), payload])
    return "sha256:" + hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()


def _timestamp(value) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, dt_timezone.utc)
    return timezone.now()


@dataclass(frozen=True)
class EventMatch:
    matched: bool
    delivery: Delivery | None = None
    email: str = ""  # the address an act may touch: ours, never just the event's word


def match_event(*, message_id: str, recipient: str, metadata=None, provider: str = "") -> EventMatch:
    """Does this event concern a message we sent? With a message id: only if it is a delivery we
    sent, and (when the event names a recipient) to that very address. A delivery whose answer we
    never heard (`unknown`: no provider id recorded) is found by our own Message-ID (Mailgun
    reports it) or the delivery id in the metadata we send (Postmark reports it), with the same
    address check. Without either: for a provider known to name the message in its events
    (providers.events_carry_message_id), nothing; only for a provider whose events carry no id,
    if the recipient is a subscriber (or a carer, through their copy) we emailed in the last
    NURTURE_WEBHOOK_RECIPIENT_DAYS days. A forged or stray event
    matches nothing."""
    if message_id or _metadata_delivery_id(metadata):
        delivery = _delivery_for(message_id=message_id, metadata=metadata, recipient=recipient)
        if delivery is None:
            return EventMatch(matched=False)
        address = delivery.to_address  # a carer's copy: the carer's address, never the subscriber's
        if recipient and recipient.strip().lower() != address.strip().lower():
            return EventMatch(matched=False, delivery=delivery)
        return EventMatch(matched=True, delivery=delivery, email=address)
    if not recipient or providers.events_carry_message_id(provider=provider):
        # A provider that names its messages: an event without the name is not about one we sent.
        return EventMatch(matched=False)
    since = timezone.now() - timedelta(days=settings.NURTURE_WEBHOOK_RECIPIENT_DAYS)
    subscriber = subscriber_by_email(email=recipient)
    if subscriber is None or subscriber.last_sent_at is None or subscriber.last_sent_at < since:
        carer_copy = carer_copy_sent_to(email=recipient, since=since)  # a carer we emailed lately
        if carer_copy is None:
            return EventMatch(matched=False)
        return EventMatch(matched=True, delivery=carer_copy, email=carer_copy.to_address)
    return EventMatch(matched=True, email=subscriber.email)


def tracking_event_record(*, provider: str, event: AnymailTrackingEvent, notify=None) -> RecordResult:
    """Store the event once per (provider, event id); suppress the address on a hard failure of a
    message we sent to it. A duplicate changes nothing. An unmatched event is stored, inert.
    A carer's copy suppresses the carer's address only, and ends the hand-off: `notify(handoff_id,
    event)` tells the subscriber (the receiver passes nurture.tasks.enqueue_carer_notice)."""
    provider = _text(provider, 40).lower() or "unknown"
    event_type = _text(event.event_type, 20) or EventType.UNKNOWN
    tracking_setting = ENGAGEMENT_SETTING.get(event_type)
    if tracking_setting and not getattr(settings, tracking_setting, False):
        return RecordResult(stored=False)  # tracking is off: keep nothing about who read what

    message_id = _text(event.message_id, 255)
    recipient = _text(event.recipient, 254)
    match = match_event(message_id=message_id, recipient=recipient, metadata=event.metadata, provider=provider)
    delivery = match.delivery
    suppressing = suppresses(event, provider=provider)
    will_suppress = suppressing and bool(match.email)
    if suppressing and not will_suppress:
        logger.warning(
            "provider event provider=%s type=%s matches no message we sent to that address: stored, not acted on",
            provider, event_type,
        )
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProviderEvent.objects.create(
                    provider=provider,
                    event_id=_event_id(provider, event),
                    event_type=event_type,
                    delivery=delivery,
                    provider_message_id=message_id,
                    reject_reason=_text(event.reject_reason, 20),
                    description=_ADDRESS.sub("[address]", _text(event.description, 400))[:200],
                    suppressed_address=will_suppress,
                    matched=match.matched,
                    timestamp=_timestamp(event.timestamp),
                )
        except IntegrityError:  # this (provider, event id) is already stored: a redelivered webhook
            logger.info("provider event duplicate provider=%s type=%s", provider, event_type)
            return RecordResult(stored=False)
        if will_suppress:
            # In the same transaction: an event stored is an event acted on.
            address_suppress(email=match.email, reason=f"{_reason_label(event)} ({provider} webhook)",
                             source=_consent_source(event))
            if delivery is not None and delivery.for_carer:
                carer_address_failed(handoff_id=delivery.carer_handoff_id, complaint=event_type == EventType.COMPLAINED,
                                     notify=notify or _no_notice)
        if match.matched and delivery is not None and delivery.status in (Delivery.Status.UNKNOWN,
                                                                          Delivery.Status.FAILED):
            _settle_unknown(delivery, event_type=event_type, message_id=message_id, suppressing=suppressing,
                            at=_timestamp(event.timestamp))
    logger.info(
        "provider event provider=%s type=%s delivery=%s suppressed=%s",
        provider, event_type, delivery.pk if delivery else None, will_suppress,
    )
    if match.matched and delivery is not None and event_type in (EventType.COMPLAINED, EventType.BOUNCED):
        sending_brake_check()  # a series email's complaint or bounce: is it time to stop?
    return RecordResult(stored=True, suppressed=will_suppress)


def _no_notice(handoff_id: int, event: str) -> None:
    logger.warning("carer hand-off ended without a notice to the subscriber handoff=%s event=%s", handoff_id, event)


def _metadata_delivery_id(metadata) -> int | None:
    delivery_id = metadata.get("delivery") if isinstance(metadata, dict) else None
    return int(delivery_id) if isinstance(delivery_id, (str, int)) and str(delivery_id).isdigit() else None


def _one_of_a_call(sharing, *, delivery_id: int | None, recipient: str) -> Delivery | None:
    """Which of the deliveries carrying one provider id an event concerns. An id is usually one
    delivery; a batch call's id (SparkPost reports its transmission id) covers the whole call, and
    then the metadata's delivery id (set per recipient at send), or failing that the recipient
    address (once per call), says which. Metadata only chooses among these: naming another
    call's delivery finds none."""
    candidates = list(sharing[:2])
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    if delivery_id is not None:
        return sharing.filter(pk=delivery_id).first()
    return sharing.filter(subscriber__email__iexact=recipient).first() if recipient else None


def _delivery_for(*, message_id: str, metadata, recipient: str = "") -> Delivery | None:
    """By the provider's id we recorded (one of a batch call's deliveries: _one_of_a_call); for a
    delivery whose answer we never heard, by our own Message-ID or the delivery id in the metadata
    (only while it awaits that answer)."""
    rows = Delivery.objects.select_related("subscriber", "carer_handoff")
    if message_id:
        sharing = rows.filter(provider_message_id=message_id).exclude(provider_message_id="")  # the partial index
        found = _one_of_a_call(sharing, delivery_id=_metadata_delivery_id(metadata), recipient=recipient)
        found = found or rows.filter(ANSWERABLE, message_id=message_id).first()
        if found is not None:
            return found
    delivery_id = _metadata_delivery_id(metadata)
    return rows.filter(ANSWERABLE, pk=delivery_id).first() if delivery_id is not None else None


# Events that say the provider had the message, whatever became of it later.
_PROVIDER_HAD_IT = {
    EventType.QUEUED, EventType.SENT, EventType.DELIVERED, EventType.DEFERRED, EventType.BOUNCED, EventType.OPENED,
    EventType.CLICKED, EventType.COMPLAINED, EventType.UNSUBSCRIBED, EventType.AUTORESPONDED,
}


def _settle_unknown(delivery: Delivery, *, event_type: str, message_id: str, suppressing: bool, at: datetime) -> None:
    """A delivery whose answer we never heard, settled by the provider's word: a hard bounce or a
    rejection -> failed (the address is suppressed above); any other sign it had it -> sent."""
    if suppressing and event_type in (EventType.BOUNCED, EventType.REJECTED) or event_type in (EventType.REJECTED,
                                                                                               EventType.FAILED):
        delivery_settle_unknown(delivery_id=delivery.pk, accepted=False, provider_message_id=message_id,
                                reason=f"provider event: {event_type}", at=at)
    elif event_type in _PROVIDER_HAD_IT:
        delivery_settle_unknown(delivery_id=delivery.pk, accepted=True,
                                provider_message_id=message_id or delivery.message_id,
                                reason="", at=at)


# Why a provider event suppresses: (the reason staff read on the suppression, the consent record's source).
_SUPPRESSION_CAUSE = {
    EventType.BOUNCED: ("hard bounce", "bounce"),
    EventType.COMPLAINED: ("spam complaint", "complaint"),
    EventType.UNSUBSCRIBED: ("unsubscribed at the provider", "provider_unsubscribe"),
    EventType.REJECTED: ("rejected by the provider", "provider_refused"),
}


def _reason_label(event: AnymailTrackingEvent) -> str:
    return _SUPPRESSION_CAUSE.get(event.event_type, ("provider event", ""))[0]


def _consent_source(event: AnymailTrackingEvent) -> str:
    return _SUPPRESSION_CAUSE.get(event.event_type, ("", "provider_event"))[1]
