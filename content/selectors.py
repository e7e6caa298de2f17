"""Reads about the guide's content: what is due for review, and what awaits a translator.

What a step sends, and why a step is held back, are the engine's questions (nurture.selectors)."""
from __future__ import annotations

import calendar
import datetime as dt

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from content.models import Article

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


def articles_published(*, language: str) -> QuerySet[Article]:
    """The guide's published articles in one language: what the public guide pages show."""
    return Article.objects.filter(language=language, status=Article.Status.PUBLISHED).order_by("title")


def article_published(*, language: str, slug: str) -> Article | None:
    return articles_published(language=language).filter(slug=slug).first()
