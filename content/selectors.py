"""Reads about the guide's content: what may be sent, what is due for review, and what awaits a reviewer.

What a step sends, and why a step is held back, are the engine's questions (nurture.selectors)."""
from __future__ import annotations

import calendar
import datetime as dt

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from content.models import Article

def months_after(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (the month's last day when it is shorter)."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def review_period_months() -> int:
    return settings.NURTURE_CONTENT_REVIEW_MONTHS


def review_is_overdue(*, article: Article, today: dt.date | None = None) -> bool:
    """Never approved, or past its next review date."""
    today = today or timezone.localdate()
    return not article.is_approved or article.next_review_on is None or article.next_review_on < today


def articles_review_overdue(*, queryset: QuerySet[Article] | None = None,
                            today: dt.date | None = None) -> QuerySet[Article]:
    queryset = Article.objects.all() if queryset is None else queryset
    today = today or timezone.localdate()
    return queryset.filter(Q(approved_at__isnull=True) | Q(next_review_on__isnull=True) | Q(next_review_on__lt=today))


def awaiting_translator_review(*, article: Article) -> bool:
    """A translation no named reviewer has approved yet."""
    return article.language != "en" and not article.is_approved


def articles_published(*, language: str) -> QuerySet[Article]:
    """The guide's articles in one language that the public guide pages show: the same rule as the
    emails (sendable_q), so a reader never sees on the web text no reviewer approved or that is overdue."""
    return Article.objects.filter(sendable_q(), language=language).order_by("title")


def article_published(*, language: str, slug: str) -> Article | None:
    return articles_published(language=language).filter(slug=slug).first()


# --- may this article be sent? The one rule (the engine's planner, sender and admin ask through it) -------


def unreviewed_may_be_sent() -> bool:
    """Only the DEBUG demo sends text no named reviewer approved (each such article says so)."""
    return settings.DEBUG


def holds_overdue() -> bool:
    """NURTURE_REVIEW_OVERDUE: "hold" (the default) keeps an article past its review date out of emails."""
    return settings.NURTURE_REVIEW_OVERDUE == "hold"


def sendable_q(prefix: str = "", *, today: dt.date | None = None) -> Q:
    """Published; approved by a named reviewer (or DEBUG); not past its review date (when held).
    `prefix` leads from the queried model to the article ("article__")."""
    today = today or timezone.localdate()
    q = Q(**{f"{prefix}status": Article.Status.PUBLISHED})
    if not unreviewed_may_be_sent():
        q &= Q(**{f"{prefix}approved_at__isnull": False}) & ~Q(**{f"{prefix}approved_by_name": ""})
    if holds_overdue():
        q &= Q(**{f"{prefix}next_review_on__isnull": True}) | Q(**{f"{prefix}next_review_on__gte": today})
    return q


_STATUS_WORDS = {Article.Status.DRAFT: "in draft", Article.Status.IN_REVIEW: "in review"}


def article_hold_reason(article: Article, *, today: dt.date | None = None) -> str | None:
    """Why this article is not sent, in words staff can act on; None: it is sent (the same rule as sendable_q)."""
    today = today or timezone.localdate()
    if article.status != Article.Status.PUBLISHED:
        return f"is {_STATUS_WORDS.get(article.status, article.status)}"
    if not article.is_approved and not unreviewed_may_be_sent():
        return "has not been approved by a clinical reviewer"
    if holds_overdue() and article.next_review_on is not None and article.next_review_on < today:
        return f"is past its review date ({article.next_review_on.isoformat()}): held until approved again"
    return None


def article_is_sendable(article: Article, *, today: dt.date | None = None) -> bool:
    return article_hold_reason(article, today=today) is None


def articles_needing_review_reminder(*, today: dt.date, days_before: int) -> list[tuple[str, Article]]:
    """("due" | "early", article) for approved articles due for review today or before and not yet
    reminded of it, or due within `days_before` days and not yet reminded early."""
    approved = Article.objects.filter(approved_at__isnull=False,
                                      next_review_on__isnull=False).select_related("approved_by")
    due = approved.filter(next_review_on__lte=today, review_reminded_due_on__isnull=True)
    early = approved.filter(
        next_review_on__gt=today, next_review_on__lte=today + dt.timedelta(days=days_before),
        review_reminded_early_on__isnull=True
    )
    return [("due", a) for a in due.order_by("next_review_on", "pk")] + [("early", a)
        for a in early.order_by("next_review_on", "pk")]


def articles_unreviewed_or_overdue(*, today: dt.date | None = None) -> tuple[list[Article], list[Article]]:
    """(published articles no named reviewer approved, published articles past their review date): `check --deploy`."""
    today = today or timezone.localdate()
    published = Article.objects.filter(status=Article.Status.PUBLISHED).order_by("language", "slug")
    unreviewed = [a for a in published if not a.is_approved]
    overdue = [a for a in published if a.is_approved and a.next_review_on is not None and a.next_review_on < today]
    return unreviewed, overdue
