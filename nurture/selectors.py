"""Reads: the queries the rest of the engine asks, in one place."""
from __future__ import annotations

from django.db.models import QuerySet

from content.models import Article
from nurture.models import Series, Step, Subscriber, Suppression


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
