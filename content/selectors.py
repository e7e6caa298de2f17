"""Reads about the guide's content: what is held back from sending and why, what is due for review.

What a step sends (its published articles in step order) is nurture.selectors.step_published_articles,
which the email builder uses; these reads explain the rest to staff."""
from __future__ import annotations

import calendar
import datetime as dt

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from content.models import Article
from nurture.models import Step

_STATUS_WORDS = {Article.Status.DRAFT: "in draft", Article.Status.IN_REVIEW: "in review"}


def step_hold_reasons(*, step: Step) -> list[str]:
    """Why a step (or part of it) cannot go out, in words staff can act on. Empty: the whole step is sendable.

    Uses the step's prefetched `steparticle_set` when present, so an admin list costs one query per page.
    """
    links = sorted(step.steparticle_set.all(), key=lambda link: (link.order, link.pk))
    if not links:
        return ["the step has no articles"]
    return [
        f"article '{link.article.slug}' ({link.article.language}) is {_STATUS_WORDS.get(link.article.status, link.article.status)}"
        for link in links
        if link.article.status != Article.Status.PUBLISHED
    ]


def step_is_held_back(*, step: Step) -> bool:
    """Held back: nothing in the step may be sent (no articles, or none published)."""
    return not any(link.article.status == Article.Status.PUBLISHED for link in step.steparticle_set.all())


def _months_before(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(month_index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def review_period_months() -> int:
    return settings.NURTURE_CONTENT_REVIEW_MONTHS


def review_cutoff(*, today: dt.date | None = None) -> dt.date:
    """Articles last reviewed on or before this date are due for review (NURTURE_CONTENT_REVIEW_MONTHS)."""
    today = today or timezone.localdate()
    return _months_before(today, review_period_months())


def review_is_overdue(*, article: Article, today: dt.date | None = None) -> bool:
    """Never reviewed, or last reviewed NURTURE_CONTENT_REVIEW_MONTHS or more ago."""
    return article.last_reviewed is None or article.last_reviewed <= review_cutoff(today=today)


def articles_review_overdue(*, queryset: QuerySet[Article] | None = None, today: dt.date | None = None) -> QuerySet[Article]:
    queryset = Article.objects.all() if queryset is None else queryset
    return queryset.filter(Q(last_reviewed__isnull=True) | Q(last_reviewed__lte=review_cutoff(today=today)))


def awaiting_translator_review(*, article: Article) -> bool:
    """A Spanish article nobody qualified has reviewed yet: the reviewer field is empty."""
    return article.language != "en" and not article.reviewer.strip()
