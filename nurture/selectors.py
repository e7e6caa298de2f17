"""Reads: the queries the rest of the engine asks, in one place."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from content.models import Article
from nurture.models import Delivery, ProviderEvent, Series, Step, Subscriber, Suppression


def subscriber_by_email(*, email: str) -> Subscriber | None:
    return Subscriber.objects.filter(email__iexact=email.strip()).first()


def series_for(*, stage: str, language: str) -> Series | None:
    return Series.objects.filter(stage=stage, language=language).first()


def is_suppressed(*, email: str) -> bool:
    return Suppression.objects.filter(email__iexact=email).exists()


def steps_from(*, series_id: int, position: int) -> QuerySet[Step]:
    return Step.objects.filter(series_id=series_id, position__gte=position).order_by("position")


def step_published_articles(*, step_id: int) -> list[Article]:
    """The step's published articles in the step's order (what its email carries)."""
    return list(
        Article.objects.filter(steparticle__step_id=step_id, status=Article.Status.PUBLISHED).order_by(
            "steparticle__order", "steparticle__id"
        )
    )


def series_steps(*, series_id: int) -> QuerySet[Step]:
    return Step.objects.filter(series_id=series_id).order_by("position").prefetch_related("articles")


@dataclass(frozen=True)
class JourneyEmail:
    step: Step
    send_at: datetime
    articles: list[Article]


def series_journey(*, series_id: int, start: datetime) -> list[JourneyEmail]:
    """The emails a subscriber confirming at `start` would get, and when.

    Mirrors the planner (services/planning.py): the first sendable step goes at once; after a
    step is sent, the next send is the *following* step's delay later; a step whose published
    articles were all had already is skipped. Send windows and cadence caps are not applied.
    """
    steps = list(series_steps(series_id=series_id))
    day = timedelta(seconds=settings.NURTURE_DAY_SECONDS)
    journey: list[JourneyEmail] = []
    received: set[int] = set()
    when = start
    for index, step in enumerate(steps):
        if journey and index > 0 and steps[index - 1].pk == journey[-1].step.pk:
            when = when + step.delay_days * day
        published = step_published_articles(step_id=step.pk)
        fresh = [a for a in published if a.pk not in received]
        if not fresh:
            continue
        journey.append(JourneyEmail(step=step, send_at=when, articles=published))
        received.update(a.pk for a in published)
    return journey


@dataclass(frozen=True)
class StepEngagement:
    """Per-step figures, each a number of distinct deliveries (an email opened five times counts once)."""

    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int


def step_engagement(*, step_id: int) -> StepEngagement:
    """What one step achieved, from the deliveries still held and their provider events. Opens and
    clicks stay 0 while that tracking is off (NURTURE_TRACK_OPENS / _CLICKS)."""
    def distinct_deliveries(event_type: str) -> Count:
        return Count("delivery", filter=Q(event_type=event_type), distinct=True)

    figures = ProviderEvent.objects.filter(delivery__step_id=step_id).aggregate(
        delivered=distinct_deliveries("delivered"),
        opened=distinct_deliveries("opened"),
        clicked=distinct_deliveries("clicked"),
        bounced=distinct_deliveries("bounced"),
    )
    sent = Delivery.objects.filter(step_id=step_id, status=Delivery.Status.SENT).count()
    return StepEngagement(sent=sent, **figures)
