"""Reads about deliveries: the articles a delivery carries (sent: as they went out; not yet: what
the sender sends now), the problem lists and counts of the staff overview and /metrics, the carer's
copy an event belongs to, and how series emails are received (complaints and hard bounces per
delivered email, for the complaint brake in services/brake.py, and whether the brake holds)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q

from content.models import Article, ArticleVersion
from nurture import tokens
from nurture.models import Delivery, Feedback, ProviderEvent, SendingBrake, StepArticle
from nurture.selectors.series import sendable_links


def _as_snapshot(article: Article, snapshot: ArticleVersion) -> Article:
    """The article as it was at `snapshot`'s version: an unsaved copy, only ever rendered."""
    shown = copy.copy(article)
    shown.title, shown.body_markdown, shown.body_html = snapshot.title, snapshot.body_markdown, snapshot.body_html
    shown.status, shown.version = snapshot.status, snapshot.version
    for name in ("approved_by_id", "approved_by_name", "approved_by_role", "approved_at", "next_review_on"):
        setattr(shown, name, getattr(snapshot, name))
    shown.updated_at = snapshot.created_at  # part of the render cache key: never mixed up with today's text
    return shown


def _sent_articles(*, delivery: Delivery, recorded: dict[int, int]) -> list[Article]:
    """Each recorded article at its recorded version (its ArticleVersion snapshot where one exists;
    as it is now otherwise), in the step's order; articles since taken out of the step come last."""
    order = {
        article_id: index
        for index, article_id in enumerate(
            StepArticle.objects.filter(step_id=delivery.step_id).order_by("order", "id").values_list("article_id",
                                                                                                     flat=True)
        )
    }
    articles = Article.objects.filter(pk__in=recorded).in_bulk()
    snapshots = {
        (v.article_id, v.version): v
        for v in ArticleVersion.objects.filter(article_id__in=recorded, version__in=set(recorded.values()))
    }
    shown = []
    for article_id in sorted(articles, key=lambda pk: (order.get(pk, len(order)), pk)):
        snapshot = snapshots.get((article_id, recorded[article_id]))
        shown.append(_as_snapshot(articles[article_id], snapshot) if snapshot else articles[article_id])
    return shown


def deliveries_articles(*, deliveries: list[Delivery]) -> dict[int, list[Article]]:
    """delivery_articles() for a batch of unsent deliveries, in one query: {delivery id: its planned
    articles still sendable, in the step's order} (the sender's re-check)."""
    by_step: dict[int, list[Article]] = {}
    for link in sendable_links(step_ids={d.step_id for d in deliveries}).select_related("article"):
        by_step.setdefault(link.step_id, []).append(link.article)
    chosen = {}
    for delivery in deliveries:
        planned = delivery.recorded_article_versions()
        chosen[delivery.pk] = [a for a in by_step.get(delivery.step_id, []) if not planned or a.pk in planned]
    return chosen


def delivery_articles(*, delivery: Delivery) -> list[Article]:
    """The articles one delivery carries: the single answer for its email, its "view in browser"
    page and the staff preview, so all three show the same thing.

    - Sent: exactly what went out. `article_versions` holds the {article id: version} the sender
      rendered; each comes back as that version's snapshot (title and body), so a later edit or
      unpublishing does not change what the reader is shown they received.
    - Not sent (queued, sending, failed, skipped): the planned articles (the keys of
      `article_versions`) that are still published, at their current version: what the sender
      sends now. A partly repeated step therefore carries only the articles that are new to them.
    A row with no recorded list (planned before lists were recorded) carries the step's published articles.
    """
    recorded = delivery.recorded_article_versions()
    if delivery.status == Delivery.Status.SENT and recorded:
        return _sent_articles(delivery=delivery, recorded=recorded)
    return deliveries_articles(deliveries=[delivery])[delivery.pk]


def carer_copy_sent_to(*, email: str, since: datetime) -> Delivery | None:
    """The latest carer's copy sent to `email` since `since`, if any: how an event from a provider
    that sends no message id is matched to a carer (services/webhooks.match_event)."""
    return (
        Delivery.objects.select_related("subscriber", "carer_handoff")
        .filter(carer_handoff__carer_email__iexact=email.strip(), sent_at__gte=since)
        .order_by("-sent_at").first()
    )


# --- the staff overview's problem lists and /metrics' counts ---------------------------------------

OVERVIEW_ROW_LIMIT = 50  # rows listed per problem table; the counts cover all of them


@dataclass
class ProblemList:
    count: int
    rows: list[Delivery]  # the first OVERVIEW_ROW_LIMIT, oldest problem first


def deliveries_stuck_sending(*, older_than: datetime) -> ProblemList:
    """In `sending` since before `older_than`: a worker died or hangs (the reconciler settles them)."""
    stuck = Delivery.objects.filter(status=Delivery.Status.SENDING, sending_started_at__lt=older_than)
    rows = list(stuck.select_related("step__series").order_by("sending_started_at")[:OVERVIEW_ROW_LIMIT])
    return ProblemList(stuck.count() if len(rows) == OVERVIEW_ROW_LIMIT else len(rows), rows)


def delivery_counts_by_status() -> dict[str, int]:
    """Every status with its number of deliveries, 0 included (/metrics)."""
    counts = dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("id")))
    return {status: counts.get(status, 0) for status in Delivery.Status.values}


def deliveries_failed_since(*, since: datetime) -> ProblemList:
    failed = Delivery.objects.filter(status=Delivery.Status.FAILED, failed_at__gte=since)
    rows = list(failed.select_related("step__series").order_by("-failed_at")[:OVERVIEW_ROW_LIMIT])
    return ProblemList(failed.count() if len(rows) == OVERVIEW_ROW_LIMIT else len(rows), rows)


def failure_reasons_since(*, since: datetime, limit: int = 20) -> list[tuple[str, int]]:
    """The most common failure reasons since `since`, with their counts."""
    return list(
        Delivery.objects.filter(status=Delivery.Status.FAILED, failed_at__gte=since)
        .order_by()
        .values_list("failure_reason")
        .annotate(n=Count("id"))
        .order_by("-n", "failure_reason")[:limit]
    )


# --- how series emails are received, and the complaint brake ---------------------------------------


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
    return SendingBrake.objects.filter(engaged=False).order_by("-resumed_at").values_list("resumed_at",
                                                                                          flat=True).first()


# --- what a link in an email names (raises tokens.TokenError for a bad link, or a delivery gone) -------


def delivery_from_token(*, purpose: str, token: str) -> Delivery:
    """The subscriber's own delivery a "view in browser" link names, with its step and series."""
    subscriber_id, extra = tokens.read_token(purpose=purpose, token=token)
    if not extra.isdigit():
        raise tokens.TokenInvalid()
    delivery = Delivery.objects.select_related("subscriber", "step__series").filter(pk=int(extra),
                                                                                    subscriber_id=subscriber_id).first()
    if delivery is None:
        raise tokens.TokenRevoked()
    return delivery


def carer_copy_from_token(*, purpose: str, token: str) -> Delivery:
    """The carer's copy a carer's "view in browser" link names; it opens nothing of the subscriber's."""
    subscriber_id, extra = tokens.read_token(purpose=purpose, token=token)
    delivery = Delivery.objects.select_related("subscriber", "step__series", "carer_handoff").filter(
        pk=int(extra) if extra.isdigit() else 0, subscriber_id=subscriber_id, carer_handoff__isnull=False,
    ).first()
    if delivery is None:
        raise tokens.TokenRevoked()
    return delivery


def delivery_question_from_token(*, purpose: str, token: str) -> tuple[Delivery, str]:
    """(the subscriber's delivery, the question) a feedback link names; the delivery carries its subscriber."""
    subscriber_id, extra = tokens.read_token(purpose=purpose, token=token)
    delivery_id, _, question = extra.partition(":")
    delivery = (
        Delivery.objects.select_related("subscriber").filter(pk=int(delivery_id), subscriber_id=subscriber_id).first()
        if delivery_id.isdigit() else None
    )
    if delivery is None or question not in Feedback.Question.values:
        raise tokens.TokenRevoked()
    return delivery, question
