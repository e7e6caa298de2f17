"""Reads: the queries the rest of the engine asks, in one place. Reads never call a service
(nurture.services): what both need, such as the planner's pure rule, lives in nurture.rules."""
from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower

from content import selectors as content_selectors
from content.models import Article, ArticleVersion
from nurture.addresses import mailbox_of
from nurture.models import Delivery, Series, SignupRequest, Step, StepArticle, Subscriber, Suppression
from nurture.rules import PlannedStep, decide, plan_order, treatment_starts_at


def with_address(queryset: QuerySet, email: str) -> QuerySet:
    """Rows whose email matches case-insensitively, through the Lower("email") unique indexes
    (email__iexact compiles to UPPER(...) on PostgreSQL and could not use them)."""
    return queryset.alias(email_lower=Lower("email")).filter(email_lower=email.strip().lower())


def subscriber_by_email(*, email: str) -> Subscriber | None:
    return with_address(Subscriber.objects.all(), email).first()


def series_for(*, stage: str, language: str) -> Series | None:
    return Series.objects.filter(stage=stage, language=language).first()


def series_step_counts(*, stage: str, languages: set[str]) -> dict[str, int]:
    """language -> number of steps, for the series of `stage` in those languages that exist."""
    return dict(
        Series.objects.filter(stage=stage, language__in=languages).annotate(step_count=Count("steps")).values_list("language", "step_count")
    )


def subscribers_due(*, now: datetime) -> QuerySet[Subscriber]:
    """The planner's due query (served by the partial index subscriber_due_idx)."""
    return (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE, next_send_at__lte=now)
        .order_by("next_send_at")
        .only(
            "id", "series_id", "next_step_position", "next_send_at", "cadence", "time_zone", "confirmed_at", "last_sent_at",
            "treatment_date", "welcome_back_due", "quiet_days", "time_of_day",
        )
    )


def oldest_due_send_time(*, now: datetime) -> datetime | None:
    """When the longest-waiting due subscriber became due (the planner's lag; /metrics)."""
    return subscribers_due(now=now).values_list("next_send_at", flat=True).first()


def confirmation_awaits(*, subscriber: Subscriber, request_id: int | None) -> bool:
    """Would this confirmation link still confirm something? Its sign-up request is open (not
    applied or superseded) for a pending or unsubscribed subscriber; a link without a request
    (made before sign-up requests) only for a pending one."""
    if request_id is None:
        return subscriber.status == Subscriber.Status.PENDING
    return subscriber.status in (Subscriber.Status.PENDING, Subscriber.Status.UNSUBSCRIBED) and SignupRequest.objects.filter(
        pk=request_id, subscriber_id=subscriber.pk, state=SignupRequest.State.CONFIRM
    ).exists()


def is_suppressed(*, email: str) -> bool:
    """Is its mailbox suppressed, under any spelling (`gone+again@`, `"gone"@`: nurture.addresses)?"""
    return Suppression.objects.filter(mailbox=mailbox_of(email)).exists()


def suppressed_among(*, emails: list[str]) -> set[str]:
    """Which of these addresses (lower-cased, as given) reach a suppressed mailbox, in one query."""
    by_mailbox = defaultdict(set)
    for email in emails:
        by_mailbox[mailbox_of(email)].add(email.strip().lower())
    if not by_mailbox:
        return set()
    hits = Suppression.objects.filter(mailbox__in=list(by_mailbox)).values_list("mailbox", flat=True)
    return {email for mailbox in hits for email in by_mailbox[mailbox]}


def steps_from(*, series_id: int, position: int) -> QuerySet[Step]:
    return Step.objects.filter(series_id=series_id, position__gte=position).order_by("position")


# --- what a step sends: the one rule ----------------------------------------------------------------
# A step sends its sendable articles in the step's order (content.selectors.sendable_q: published, approved
# unless DEBUG, not held past review). Planner, sender, admin notes, journey and overview ask through these.


def is_sendable(article: Article) -> bool:  # one article already in memory (prefetched links)
    return content_selectors.article_is_sendable(article)


def sendable_filter(article_path: str = "article") -> Q:  # as a filter, from the queried model to the article
    return content_selectors.sendable_q(f"{article_path}__")


def sendable_links(*, step_ids) -> QuerySet[StepArticle]:
    """The sendable step-article links of these steps, each step's in the step's order."""
    return StepArticle.objects.filter(sendable_filter(), step_id__in=step_ids).order_by("step_id", "order", "id")


def steps_sendable_article_ids(*, step_ids) -> dict[int, list[int]]:
    """step id -> its sendable article ids in order, in one query (the planner's read)."""
    by_step: dict[int, list[int]] = defaultdict(list)
    for step_id, article_id in sendable_links(step_ids=step_ids).values_list("step_id", "article_id"):
        by_step[step_id].append(article_id)
    return by_step


def step_published_articles(*, step_id: int) -> list[Article]:
    """The step's published articles in the step's order (what its email carries)."""
    return [link.article for link in sendable_links(step_ids=[step_id]).select_related("article")]


def step_hold_reasons(*, step: Step) -> list[str]:
    """Why a step (or part of it) cannot go out, in words staff can act on. Empty: the whole step is sendable.

    Uses the step's prefetched `steparticle_set` when present, so an admin list costs one query per page.
    """
    links = sorted(step.steparticle_set.all(), key=lambda link: (link.order, link.pk))
    if not links:
        return ["the step has no articles"]
    reasons = ((link.article, content_selectors.article_hold_reason(link.article)) for link in links)
    return [f"article '{article.slug}' ({article.language}) {reason}" for article, reason in reasons if reason]


def step_is_held_back(*, step: Step) -> bool:
    """Held back: nothing in the step may be sent (no articles, or none published)."""
    return not any(is_sendable(link.article) for link in step.steparticle_set.all())


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
            StepArticle.objects.filter(step_id=delivery.step_id).order_by("order", "id").values_list("article_id", flat=True)
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
        planned = {int(k) for k, v in (delivery.article_versions or {}).items() if str(k).isdigit() and isinstance(v, int)}
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
    recorded = {int(k): v for k, v in (delivery.article_versions or {}).items() if str(k).isdigit() and isinstance(v, int)}
    if delivery.status == Delivery.Status.SENT and recorded:
        return _sent_articles(delivery=delivery, recorded=recorded)
    return deliveries_articles(deliveries=[delivery])[delivery.pk]


# --- series content as the planner reads it (once per series per run) ------------------------


class SeriesSteps:
    """Steps of each series with their sendable articles; loaded once per series per run."""

    def __init__(self):
        self._by_series: dict[int, list[PlannedStep]] = {}

    def load(self, series_ids: set[int]) -> None:
        missing = [sid for sid in series_ids if sid not in self._by_series]
        if not missing:
            return
        steps = list(
            Step.objects.filter(series_id__in=missing).order_by("series_id", "position")
            .values_list("id", "series_id", "position", "delay_days", "before_treatment")
        )
        articles = steps_sendable_article_ids(step_ids=[s[0] for s in steps])
        for sid in missing:
            self._by_series[sid] = []
        for step_id, series_id, position, delay_days, before_treatment in steps:
            self._by_series[series_id].append(
                PlannedStep(step_id, position, delay_days, tuple(articles.get(step_id, ())), before_treatment)
            )

    def from_position(self, series_id: int | None, position: int) -> list[PlannedStep]:
        if series_id is None:
            return []
        return [s for s in self._by_series.get(series_id, []) if s.position >= position]

    def for_subscriber(self, subscriber: Subscriber, *, now: datetime) -> tuple[list[PlannedStep], datetime | None]:
        """(the steps to consider in order, the treatment start instant or None): the series from
        their place or, with a treatment date, in rules.plan_order's order."""
        if subscriber.series_id is None:
            return [], None
        starts_at = treatment_starts_at(subscriber.treatment_date, time_zone=subscriber.time_zone)
        steps = plan_order(
            self._by_series.get(subscriber.series_id, []), position=subscriber.next_step_position, starts_at=starts_at, now=now
        )
        return steps, starts_at


# --- the journey preview: the planner's rule run forward, nothing written -------------------


@dataclass(frozen=True)
class JourneyStep:
    step_id: int
    send_at: datetime
    article_ids: tuple[int, ...]


def _simulated_journey(
    *, series_id: int, start: datetime, time_zone: str = "UTC", cadence: str = "as_planned", treatment_date=None, **timing
) -> list[JourneyStep]:
    """The emails a subscriber confirming at `start` would get, and when: the planner's own rule
    (decide / next_send_time: delays, the gap between emails, cadence, the local daytime window;
    with a treatment date, the front-loaded order) run forward on a simulated clock, with nothing
    written. Assumes the planner runs on time."""
    series_steps = SeriesSteps()
    series_steps.load({series_id})
    subscriber = Subscriber(
        series_id=series_id, time_zone=time_zone, cadence=cadence, confirmed_at=start, next_step_position=0,
        treatment_date=treatment_date, **timing,  # quiet_days, time_of_day: the days and hours they chose
    )
    steps, starts_at = series_steps.for_subscriber(subscriber, now=start)
    journey: list[JourneyStep] = []
    received: set[int] = set()
    done: set[int] = set()
    now = start
    for _ in range(4 * len(steps) + 2):  # each step is deferred at most once, then sent or passed
        decision = decide(
            subscriber=subscriber, steps=steps, received=received, steps_done=done,
            last_email_at=journey[-1].send_at if journey else None, now=now, starts_at=starts_at,
        )
        if decision.step is not None:
            journey.append(JourneyStep(decision.step.id, now, tuple(decision.article_ids)))
            received.update(decision.article_ids)
            done.add(decision.step.id)
        subscriber.next_step_position = decision.next_step_position
        if decision.next_send_at is None:
            break
        now = max(now, decision.next_send_at)
        steps, starts_at = series_steps.for_subscriber(subscriber, now=now)
    return journey


@dataclass(frozen=True)
class JourneyEmail:
    step: Step
    send_at: datetime
    articles: list[Article]


def series_hold_reasons(*, series_id: int) -> list[tuple[Step, list[str]]]:
    steps = Step.objects.filter(series_id=series_id).prefetch_related("steparticle_set__article").order_by("position")
    return [(step, reasons) for step in steps if (reasons := step_hold_reasons(step=step))]


def series_journey(*, series_id: int, start: datetime, time_zone: str = "UTC", treatment_date=None, **timing) -> list[JourneyEmail]:
    """The emails a subscriber confirming at `start` would get, and when, with the articles each
    would carry: the planner's own rule (nurture.rules) run forward on a simulated clock. With a
    sample `treatment_date`, the plan around it."""
    planned = _simulated_journey(series_id=series_id, start=start, time_zone=time_zone, treatment_date=treatment_date, **timing)
    steps = Step.objects.in_bulk([p.step_id for p in planned])
    articles = Article.objects.in_bulk([a for p in planned for a in p.article_ids])
    return [
        JourneyEmail(step=steps[p.step_id], send_at=p.send_at, articles=[articles[a] for a in p.article_ids])
        for p in planned
    ]


# --- the staff overview (nurture.admin.overview): set-based counts, a fixed number of queries --------------

OVERVIEW_ROW_LIMIT = 50  # rows listed per problem table; the counts cover all of them


@dataclass
class SeriesOverview:
    series: Series | None  # None: subscribers in no series (not confirmed yet, or no series for their stage)
    deliveries: dict[str, int]  # delivery status -> count planned in the window
    subscribers: dict[str, int]  # subscriber status -> count
    held_back: list[tuple[int, str]]  # (position, subject) of steps with no sendable article
    hold_reasons: dict[int, list[str]] = field(default_factory=dict)


def series_overview(*, since: datetime) -> list[SeriesOverview]:
    """Per series: deliveries planned since `since` by status, subscribers by status, held-back
    steps and why. Six queries whatever the number of series, steps, subscribers or deliveries."""
    rows = {s.pk: SeriesOverview(s, {}, {}, []) for s in Series.objects.order_by("language", "stage")}
    for step in Step.objects.prefetch_related("steparticle_set__article").order_by("series_id", "position"):
        reasons = step_hold_reasons(step=step)
        if reasons and step.series_id in rows:
            rows[step.series_id].hold_reasons[step.position] = reasons
    no_series = SeriesOverview(None, {}, {}, [])
    for series_id, status, count in (
        Delivery.objects.filter(queued_at__gte=since).order_by().values_list("step__series_id", "status").annotate(n=Count("id"))
    ):
        rows.get(series_id, no_series).deliveries[status] = count
    for series_id, status, count in Subscriber.objects.order_by().values_list("series_id", "status").annotate(n=Count("id")):
        rows.get(series_id, no_series).subscribers[status] = count
    held = (
        Step.objects.annotate(published=Count("steparticle", filter=sendable_filter("steparticle__article")))
        .filter(published=0)
        .order_by("series_id", "position")
        .values_list("series_id", "position", "subject")
    )
    for series_id, position, subject in held:
        rows.get(series_id, no_series).held_back.append((position, subject))
    return [*rows.values(), *([no_series] if no_series.subscribers or no_series.deliveries else [])]


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
