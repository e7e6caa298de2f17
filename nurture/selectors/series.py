"""Reads about series as the engine sees them: a stage and language's series and its steps, what a
step sends (the one sendable rule), why a step is held back, the steps with their sendable articles
as the planner loads them, the journey preview, and the staff overview's per-series counts. Reads
never call a service (nurture.services): what both need, such as the planner's pure rule, lives in
nurture.rules."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from content import selectors as content_selectors
from content.models import Article
from nurture.models import Delivery, Series, Step, StepArticle, Subscriber
from nurture.rules import PlannedStep, decide, plan_order, treatment_starts_at


def series_for(*, stage: str, language: str) -> Series | None:
    return Series.objects.filter(stage=stage, language=language).first()


def series_step_counts(*, stage: str, languages: set[str]) -> dict[str, int]:
    """language -> number of steps, for the series of `stage` in those languages that exist."""
    return dict(
        Series.objects.filter(stage=stage,
            language__in=languages).annotate(step_count=Count("steps")).values_list("language", "step_count")
    )



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
    return [f"“{article.title}” ({article.language}) {reason}" for article, reason in reasons if reason]


def step_is_held_back(*, step: Step) -> bool:
    """Held back: nothing in the step may be sent (no articles, or none published)."""
    return not any(is_sendable(link.article) for link in step.steparticle_set.all())


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
            self._by_series.get(subscriber.series_id, []), position=subscriber.next_step_position, starts_at=starts_at,
            now=now
        )
        return steps, starts_at


# --- the journey preview: the planner's rule run forward, nothing written -------------------


@dataclass(frozen=True)
class JourneyStep:
    step_id: int
    send_at: datetime
    article_ids: tuple[int, ...]


def _simulated_journey(
    *, series_id: int, start: datetime, time_zone: str = "UTC", cadence: str = "as_planned", treatment_date=None,
    **timing
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


def series_journey(*, series_id: int, start: datetime, time_zone: str = "UTC", treatment_date=None,
                   **timing) -> list[JourneyEmail]:
    """The emails a subscriber confirming at `start` would get, and when, with the articles each
    would carry: the planner's own rule (nurture.rules) run forward on a simulated clock. With a
    sample `treatment_date`, the plan around it."""
    planned = _simulated_journey(series_id=series_id, start=start, time_zone=time_zone, treatment_date=treatment_date,
                                 **timing)
    steps = Step.objects.in_bulk([p.step_id for p in planned])
    articles = Article.objects.in_bulk([a for p in planned for a in p.article_ids])
    return [
        JourneyEmail(step=steps[p.step_id], send_at=p.send_at, articles=[articles[a] for a in p.article_ids])
        for p in planned
    ]


# --- the staff overview (nurture.admin.overview): set-based counts, a fixed number of queries --------------


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
        Delivery.objects.filter(queued_at__gte=since).order_by().values_list("step__series_id",
                                                                             "status").annotate(n=Count("id"))
    ):
        rows.get(series_id, no_series).deliveries[status] = count
    for series_id, status, count in Subscriber.objects.order_by().values_list("series_id",
                                                                              "status").annotate(n=Count("id")):
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
