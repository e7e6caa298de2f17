"""Reads for the complaint brake (services/brake.py): how series emails are received (complaints
and hard bounces per delivered email, from the provider's events) and whether the brake holds.
Read by the brake, the sender, the planner, the reconciler, /metrics and the sending overview."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q

from nurture.models import Delivery, ProviderEvent, SendingBrake


@dataclass(frozen=True)
class SeriesMailHealth:
    """Series emails' reception over a window, from the provider's events (services/brake.py)."""

    emails: int  # delivered (the provider's delivered events; sent, for a provider that sends none)
    complaints: int
    hard_bounces: int

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.emails if self.emails else 0.0

    @property
    def hard_bounce_rate(self) -> float:
        return self.hard_bounces / self.emails if self.emails else 0.0


def series_mail_health(*, since: datetime) -> SeriesMailHealth:
    """Complaints and hard bounces (a bounce that suppressed the address) of series emails (events
    matched to a delivery) received since `since`, over the series emails delivered in that time.
    Two queries."""
    counts = ProviderEvent.objects.filter(delivery__isnull=False, matched=True, received_at__gte=since).aggregate(
        delivered=Count("pk", filter=Q(event_type="delivered")),
        complaints=Count("pk", filter=Q(event_type="complained")),
        hard_bounces=Count("pk", filter=Q(event_type="bounced", suppressed_address=True)),
    )
    emails = counts["delivered"] or Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__gte=since).count()
    return SeriesMailHealth(emails=emails, complaints=counts["complaints"], hard_bounces=counts["hard_bounces"])


def sending_brake_engaged() -> SendingBrake | None:
    return SendingBrake.objects.filter(engaged=True).first()


def sending_brake_last_resumed_at() -> datetime | None:
    return SendingBrake.objects.filter(engaged=False).order_by("-resumed_at").values_list("resumed_at", flat=True).first()
