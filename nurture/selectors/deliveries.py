"""How series emails are received, from the provider's events: for the complaint brake
(services/brake.py; complaints and hard bounces per delivered email, and whether the brake holds),
read by the brake, the sender, the planner, the reconciler, /metrics and the sending overview; and
what each step's emails achieved (step_engagement)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from nurture.models import Delivery, ProviderEvent, SendingBrake, Step


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


@dataclass(frozen=True)
class StepEngagement:
    """Per-step figures, each a number of distinct deliveries (an email opened five times counts once)."""

    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int


def with_engagement(steps: QuerySet[Step]) -> QuerySet[Step]:
    """Steps annotated with what each achieved, in one grouped query: sent deliveries still held,
    and distinct deliveries with a delivered / opened / clicked / bounced provider event. Opens and
    clicks stay 0 while that tracking is off (NURTURE_TRACK_OPENS / _CLICKS)."""
    def with_event(event_type: str) -> Count:
        return Count("deliveries", filter=Q(deliveries__events__event_type=event_type), distinct=True)

    return steps.annotate(
        sent_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SENT), distinct=True),
        delivered_count=with_event("delivered"),
        opened_count=with_event("opened"),
        clicked_count=with_event("clicked"),
        bounced_count=with_event("bounced"),
    )


def step_engagement(*, step_id: int) -> StepEngagement:
    """What one step achieved (see with_engagement)."""
    step = with_engagement(Step.objects.filter(pk=step_id)).first()
    if step is None:
        return StepEngagement(sent=0, delivered=0, opened=0, clicked=0, bounced=0)
    return StepEngagement(
        sent=step.sent_count, delivered=step.delivered_count, opened=step.opened_count,
        clicked=step.clicked_count, bounced=step.bounced_count,
    )
