"""Sending: claim a delivery, re-check it may go, hand it to the provider, record the outcome."""
from __future__ import annotations

import logging

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from nurture import emails, selectors
from nurture.models import Delivery, Subscriber

logger = logging.getLogger(__name__)


def delivery_claim(*, delivery_id: int) -> bool:
    """queued -> sending in one UPDATE, so two workers never take the same row."""
    return bool(
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.SENDING, sending_started_at=timezone.now(), attempts=F("attempts") + 1
        )
    )


def _skip(delivery: Delivery, reason: str) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SKIPPED, failure_reason=reason)


def send_delivery(*, delivery_id: int, connection=None) -> str:
    """Send one claimed-or-claimable delivery. Returns the final status."""
    if not delivery_claim(delivery_id=delivery_id):
        return "not-claimed"
    delivery = Delivery.objects.select_related("subscriber", "step").get(pk=delivery_id)
    subscriber = delivery.subscriber
    if subscriber.status != Subscriber.Status.ACTIVE or selectors.is_suppressed(email=subscriber.email):
        _skip(delivery, f"subscriber is {subscriber.status}")
        return Delivery.Status.SKIPPED
    message = emails.build_delivery_email(delivery)
    Delivery.objects.filter(pk=delivery.pk).update(message_id=message.extra_headers["Message-ID"])
    message.connection = connection
    message.send()
    status = getattr(message, "anymail_status", None)
    provider_id = (status.message_id or "") if status is not None else ""
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.SENT, sent_at=now, provider_message_id=str(provider_id)
        )
        Subscriber.objects.filter(pk=subscriber.pk).update(last_sent_at=now)
    return Delivery.Status.SENT


def send_deliveries(*, delivery_ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    connection = get_connection()
    with connection:
        for delivery_id in delivery_ids:
            outcome = send_delivery(delivery_id=delivery_id, connection=connection)
            counts[outcome] = counts.get(outcome, 0) + 1
    logger.info("send batch size=%d outcome=%s", len(delivery_ids), counts)
    return counts


def send_confirmation(*, subscriber_id: int) -> bool:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is None or selectors.is_suppressed(email=subscriber.email):
        return False
    emails.build_confirmation_email(subscriber).send()
    return True
