"""Replies reach a person: inbound email from the provider's inbound webhook (anymail's `inbound`
signal, nurture/receivers.py), matched to one of our messages and queued for Subscriber care.

- Matched: its In-Reply-To or References names a delivery's Message-ID, and it comes from the
  address that delivery went to. Anything else is stored as unmatched for staff and never acted on.
- Automatic replies (Auto-Submitted, out-of-office headers, Precedence: auto_reply / bulk / junk,
  bounces: an empty envelope sender or a delivery-status report) are stored as automatic, without
  their text, and ignored.
- A reply asking to stop (its first line is one of STOP_PHRASES, in English or Spanish) unsubscribes
  the person and sends one email saying so.
- Otherwise it waits in the "Replies" queue (admin), and while it waits the person's series is
  paused (NURTURE_REPLY_PAUSES_SERIES, on by default); marking it handled resumes the series.

Only the text part is kept (cut to MAX_TEXT characters); attachments and HTML are dropped; the
text and the sender's address are never logged. Replies are purged after NURTURE_REPLY_RETENTION_DAYS."""
from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from nurture.emails.messages import build_reply_unsubscribed_email
from nurture.models import ConsentRecord, Delivery, Reply, Subscriber
from nurture.selectors.subscribers import is_suppressed
from nurture.services import subscribers as subscriber_services
from nurture.services import throttle
from nurture.services.audit import audit_record

logger = logging.getLogger(__name__)

MAX_TEXT = 20_000
MAX_SUBJECT = 200
MAX_IDS = 50  # message ids read from References: enough for any real thread
# A reply whose first line is one of these (case, accents and punctuation ignored) asks to stop.
STOP_PHRASES = {
    "en": {"stop", "unsubscribe", "unsubscribe me", "stop emails", "stop emailing me", "remove me", "no more emails",
           "cancel"},
    "es": {"baja", "darme de baja", "dar de baja", "de baja", "quiero darme de baja", "cancelar", "parar",
           "no mas correos",
           "no quiero mas correos", "stop"},
}
_ALL_STOP_PHRASES = set().union(*STOP_PHRASES.values())
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_AUTO_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}


def _normalised(line: str) -> str:
    """Lower case, accents and punctuation removed, spaces squeezed: "¡BAJA!" -> "baja"."""
    text = unicodedata.normalize("NFKD", line).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text).split())


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip() and not line.lstrip().startswith(">"):
            return line
    return ""


def asks_to_stop(text: str) -> bool:
    return _normalised(first_line(text)) in _ALL_STOP_PHRASES


def is_automatic(message) -> bool:
    """Auto-Submitted (RFC 3834), the common out-of-office headers, bulk precedence, and bounces."""
    if (message.get("Auto-Submitted") or "no").strip().lower() != "no":
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")):
        return True
    if (message.get("Precedence") or "").strip().lower() in _AUTO_PRECEDENCE:
        return True
    if getattr(message, "envelope_sender", None) == "" or message.get_content_type() == "multipart/report":
        return True
    sender = (message.from_email.addr_spec if message.from_email else "").lower()
    return sender.startswith(("mailer-daemon@", "postmaster@"))


def referenced_ids(message) -> list[str]:
    """The Message-IDs this reply answers, from In-Reply-To and References (bounded)."""
    found = _MESSAGE_ID.findall(f"{message.get('In-Reply-To') or ''} {message.get('References') or ''}")
    return list(dict.fromkeys(found))[:MAX_IDS]


def _match(message) -> Delivery | None:
    """The delivery this replies to, only when the reply comes from an address that delivery went to."""
    ids = referenced_ids(message)
    if not ids or not message.from_email:
        return None
    sender = message.from_email.addr_spec.strip().lower()
    for delivery in Delivery.objects.select_related("subscriber",
                                                    "carer_handoff").filter(message_id__in=ids).order_by("-pk"):
        if sender == delivery.to_address.strip().lower():  # each copy has one address: its own
            return delivery
    return None


def _event_id(event, message) -> str:
    return str(event.event_id or message.get("Message-ID") or "")[:255]


def reply_receive(*, provider: str, event, enqueue_stop_email=None) -> Reply | None:
    """Store one inbound message and act on it. Returns None for a duplicate delivery of the webhook.
    `enqueue_stop_email(reply_id)`: sends the "you are unsubscribed" email once committed."""
    message = event.message
    if message is None:
        return None
    subject = str(message.get("Subject") or "")[:MAX_SUBJECT]
    fields = {"provider": provider[:40], "event_id": _event_id(event, message), "subject": subject}
    with transaction.atomic():
        if fields["event_id"] and Reply.objects.filter(provider=fields["provider"],
                                                       event_id=fields["event_id"]).exists():
            return None
        delivery = None if is_automatic(message) else _match(message)
        if is_automatic(message):
            reply = _create(state=Reply.State.AUTOMATIC, **fields)  # no text kept: nobody needs to read it
        elif delivery is None:
            reply = _create(state=Reply.State.UNMATCHED, text=(message.text or "")[:MAX_TEXT], **fields)
        else:
            reply = _matched(delivery, message, fields, enqueue_stop_email)
    if reply is not None:
        logger.info("reply received reply=%s state=%s subscriber=%s", reply.pk, reply.state, reply.subscriber_id)
    return reply


def _create(**fields) -> Reply | None:
    try:
        with transaction.atomic():
            return Reply.objects.create(**fields)
    except IntegrityError:  # the same webhook, delivered twice at once
        return None


def _matched(delivery: Delivery, message, fields: dict, enqueue_stop_email) -> Reply | None:
    subscriber = Subscriber.objects.select_for_update().get(pk=delivery.subscriber_id)
    text = (message.text or "")[:MAX_TEXT]
    from_subscriber = message.from_email.addr_spec.strip().lower() == subscriber.email.strip().lower()
    if from_subscriber and asks_to_stop(text):
        was_in = subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED)
        reply = _create(state=Reply.State.STOP, subscriber=subscriber, delivery=delivery, text=text, **fields)
        if reply is not None and was_in:
            subscriber_services.subscriber_unsubscribe(subscriber_id=subscriber.pk, source="reply")
            if enqueue_stop_email is not None:
                transaction.on_commit(lambda: enqueue_stop_email(reply.pk))
        return reply
    pause = settings.NURTURE_REPLY_PAUSES_SERIES and subscriber.status == Subscriber.Status.ACTIVE
    reply = _create(state=Reply.State.WAITING, subscriber=subscriber, delivery=delivery, text=text, paused_series=pause,
                    **fields)
    if reply is not None and pause:
        subscriber_services.subscriber_pause(subscriber_id=subscriber.pk, source="reply")
    return reply


@transaction.atomic
def reply_mark_handled(*, reply_id: int, user) -> Reply:
    """Staff answered (or dealt with) a waiting reply. If it paused the series and nothing else
    keeps it paused (another waiting reply, or a pause the person chose since), the series resumes
    where it stopped. Audited."""
    reply = Reply.objects.select_for_update().get(pk=reply_id)
    if reply.state != Reply.State.WAITING:
        return reply
    reply.state, reply.handled_at, reply.handled_by = Reply.State.HANDLED, timezone.now(), user.get_username()
    reply.save(update_fields=["state", "handled_at", "handled_by"])
    audit_record(user=user, action="change", subscriber_id=reply.subscriber_id, detail="reply marked handled")
    if reply.paused_series and reply.subscriber_id and _paused_only_by_replies(reply.subscriber_id):
        subscriber_services.subscriber_resume(subscriber_id=reply.subscriber_id, source="reply_handled")
    return reply


def _paused_only_by_replies(subscriber_id: int) -> bool:
    if Reply.objects.filter(subscriber_id=subscriber_id, state=Reply.State.WAITING, paused_series=True).exists():
        return False
    last_pause = ConsentRecord.objects.filter(subscriber_id=subscriber_id,
                                              kind=ConsentRecord.Kind.PAUSE).order_by("-pk").first()
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    return (subscriber.status == Subscriber.Status.PAUSED and subscriber.paused_until is None
            and last_pause is not None and last_pause.source == "reply")


def expired_replies(*, now: datetime) -> QuerySet[Reply]:
    """Replies older than NURTURE_REPLY_RETENTION_DAYS, except one still waiting for a person."""
    cutoff = now - timedelta(days=settings.NURTURE_REPLY_RETENTION_DAYS)
    return Reply.objects.filter(received_at__lt=cutoff).exclude(state=Reply.State.WAITING)


def reply_stop_email_send(*, reply_id: int) -> bool:
    """The one email saying a "stop" reply worked. Once: stamped (handled_at, by "automatic") in the
    same transaction as the send; nothing for a reply that is not a stop or an address since suppressed."""
    with transaction.atomic():
        reply = Reply.objects.select_for_update(of=("self",)).select_related("subscriber").filter(pk=reply_id,
            state=Reply.State.STOP).first()
        if reply is None or reply.handled_at is not None or reply.subscriber is None:
            return False
        if is_suppressed(email=reply.subscriber.email):
            return False
        message = build_reply_unsubscribed_email(reply.subscriber)
        throttle.wait_for_send_slot()
        message.send()
        Reply.objects.filter(pk=reply.pk).update(handled_at=timezone.now(), handled_by="automatic")
    logger.info("stop reply confirmed by email reply=%s", reply_id)
    return True
