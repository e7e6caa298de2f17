"""Small builders for scheduler tests: articles, a series with steps, active subscribers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from content.models import Article
from content.services import article_approve
from support.library import sample_reviewer
from nurture.models import Series, Step, StepArticle, Subscriber


def article(slug: str, *, language: str = "en", status: str = Article.Status.PUBLISHED, approved: bool = True) -> Article:
    """An article; `approved` (the default): a clinical reviewer approved it through the real
    service (with DEBUG off, as in tests, nothing unapproved is sent)."""
    found = Article.objects.filter(slug=slug, language=language).first()
    if found:
        return found
    made = Article.objects.create(
        slug=slug,
        language=language,
        title=slug.replace("-", " ").title(),
        stages=["recently_diagnosed", "in_treatment", "in_remission"],
        source_section="test",
        body_markdown=f"Body of {slug}.",
        body_html=f"<p>Body of {slug}.</p>",
        status=status,
    )
    if approved:
        article_approve(article_id=made.pk, user=sample_reviewer(), role="oncology nurse")
        made.refresh_from_db()
    return made


def series(stage: str, steps: list[tuple[int, list[str]]], *, language: str = "en") -> Series:
    """steps: [(delay_days, [article slugs]), ...] in order."""
    made = Series.objects.create(stage=stage, language=language, name=f"{stage} {language}")
    for position, (delay, slugs) in enumerate(steps):
        step = Step.objects.create(series=made, position=position, delay_days=delay, subject=f"Step {position + 1}")
        for order, slug in enumerate(slugs):
            StepArticle.objects.create(step=step, article=article(slug, language=language), order=order)
    return made


def active_subscriber(
    email: str, the_series: Series, *, time_zone: str = "UTC", cadence: str = "as_planned", now: datetime | None = None, **extra
) -> Subscriber:
    now = now or timezone.now()
    return Subscriber.objects.create(
        email=email,
        stage=the_series.stage,
        language=the_series.language,
        time_zone=time_zone,
        cadence=cadence,
        status=Subscriber.Status.ACTIVE,
        series=the_series,
        next_step_position=0,
        next_send_at=now,
        confirmed_at=now,
        **extra,
    )


@dataclass
class SendOutcome:
    status: str  # a Delivery.Status, "not-claimed", or "retry"
    countdown: float = 0.0


def send_one(*, delivery_id: int, wait_for_slot=None) -> SendOutcome:
    """One delivery through the real pipeline (nurture.sending.deliveries_send), its outcome by status."""
    from nurture import sending
    outcome = sending.deliveries_send(delivery_ids=[delivery_id], wait_for_slot=wait_for_slot)
    if outcome.retry_ids:
        return SendOutcome("retry", outcome.retry_countdown)
    [status] = list(outcome.counts) or ["not-claimed"]
    return SendOutcome(status)
