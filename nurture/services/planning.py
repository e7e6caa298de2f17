"""Planning: turn due subscribers into Delivery rows and move their schedule on.

The due set is `status=active and next_send_at <= now`, read in bounded batches through the
partial index subscriber_due_idx, so a run costs what is due rather than what exists. Each batch
costs a fixed number of queries (subscribers, their delivery history, one insert, one update),
whatever its size; series steps are read once per run. Rows are locked with SKIP LOCKED where the
database supports it (PostgreSQL), so several planners (two beats, several machines) never plan
the same subscriber twice; elsewhere (SQLite, the local demo) a file lock lets one planner run at
a time. The unique (subscriber, step) constraint is the last guard everywhere.

When is a subscriber's next email due? `next_send_time` (pure, unit-tested) answers: the earliest
instant that is at least the step's delay after their last email, at least
NURTURE_MIN_DAYS_BETWEEN_EMAILS after it, at least their cadence (weekly 7, monthly 30 days)
after it, and inside their local daytime window. `next_send_at` on the subscriber is only a hint
for the due query: the planner re-checks the rule when it picks a subscriber, so whoever moved
next_send_at (confirmation, stage change, resume, staff) cannot make an email break the rules.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from content.models import Article
from nurture.models import Delivery, Step, StepArticle, Subscriber

logger = logging.getLogger(__name__)

REAL_DAY_SECONDS = 86400
CADENCE_DAYS = {
    Subscriber.Cadence.AS_PLANNED: 0,
    Subscriber.Cadence.WEEKLY: 7,
    Subscriber.Cadence.MONTHLY: 30,
}
# Deliveries in these states count as "had it": the article is not planned again.
RECEIVED_STATES = (Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT)


# --- the rule: when may the next email go? ----------------------------------------------------


def _wall_to_instant(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """A local wall-clock time as an aware instant. Ambiguous (fall-back) times take their first
    occurrence (fold=0, the earlier instant); nonexistent (spring-forward gap) times are moved
    forward by the gap, as calendars do (zoneinfo's fold=0 reading of a gap time does exactly that)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(dt_timezone.utc)


def into_send_window(instant: datetime, *, time_zone: str, start_hour: int, end_hour: int) -> datetime:
    """The earliest instant >= `instant` whose local wall time is in [start_hour:00, end_hour:00).

    Worked in local wall time (the next opening is "tomorrow at 09:00 local", never "+24 hours"),
    so a daylight-saving change moves the instant, not the local hour, and no day is skipped or
    doubled."""
    try:
        tz = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # Validated on save; a zone that later vanished from tzdata must not stall a whole batch.
        tz = zoneinfo.ZoneInfo("UTC")
    local = instant.astimezone(tz)
    if start_hour <= local.hour < end_hour:
        return instant
    opening_day: date = local.date() if local.hour < start_hour else local.date() + timedelta(days=1)
    for offset in range(3):  # a window lost in a DST gap (e.g. 02:00-03:00) moves to the next day
        wall = datetime.combine(opening_day + timedelta(days=offset), time(start_hour))
        candidate = _wall_to_instant(wall, tz)
        if candidate >= instant and start_hour <= candidate.astimezone(tz).hour < end_hour:
            return candidate
    return candidate  # unreachable for real zones and a valid window; never loops


def next_send_time(
    *,
    last_sent_at: datetime | None,
    delay_days: int,
    cadence: str,
    time_zone: str,
    now: datetime,
    started_at: datetime | None = None,
    day_seconds: int | None = None,
    min_days_between: int | None = None,
    window_start_hour: int | None = None,
    window_end_hour: int | None = None,
) -> datetime:
    """The earliest instant the next email may go out. Pure: settings only fill in defaults.

    - the step's delay counts from the last email (or from `started_at`, e.g. confirmation, when
      there has been none); the frequency cap and the cadence count from the last email;
    - durations are absolute (a "day" is NURTURE_DAY_SECONDS), so a cap of 2 days is never less
      than 48 hours, even across a daylight-saving change;
    - then the result is pushed into the next local daytime window. With demo/test days
      (NURTURE_DAY_SECONDS != 86400) a local-time window means nothing and is skipped.
    """
    day_seconds = settings.NURTURE_DAY_SECONDS if day_seconds is None else day_seconds
    min_days_between = settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS if min_days_between is None else min_days_between
    start_hour = settings.NURTURE_SEND_WINDOW_START_HOUR if window_start_hour is None else window_start_hour
    end_hour = settings.NURTURE_SEND_WINDOW_END_HOUR if window_end_hour is None else window_end_hour
    one_day = timedelta(seconds=day_seconds)
    # Absolute arithmetic in UTC: "+2 days" on a datetime carrying a local zone would be wall-clock
    # arithmetic in Python and come out an hour short or long across a clock change.
    now = now.astimezone(dt_timezone.utc)
    last_sent_at = last_sent_at.astimezone(dt_timezone.utc) if last_sent_at else None
    started_at = started_at.astimezone(dt_timezone.utc) if started_at else None

    earliest = now
    delay_from = last_sent_at or started_at
    if delay_from is not None:
        earliest = max(earliest, delay_from + delay_days * one_day)
    if last_sent_at is not None:
        gap_days = max(min_days_between, CADENCE_DAYS.get(cadence, 0))
        earliest = max(earliest, last_sent_at + gap_days * one_day)
    if day_seconds == REAL_DAY_SECONDS:
        earliest = into_send_window(earliest, time_zone=time_zone, start_hour=start_hour, end_hour=end_hour)
    return earliest


# --- series content, read once per planning run -------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    id: int
    position: int
    delay_days: int
    article_ids: tuple[int, ...]  # published articles, in the step's order


def _sendable_article_ids(step_ids: list[int]) -> dict[int, list[int]]:
    """step id -> its published article ids in order, in one query.

    The set-based twin of nurture.selectors.step_published_articles (same filter, same order), so
    a planning run does not pay one query per step."""
    by_step: dict[int, list[int]] = defaultdict(list)
    rows = (
        StepArticle.objects.filter(step_id__in=step_ids, article__status=Article.Status.PUBLISHED)
        .order_by("step_id", "order", "id")
        .values_list("step_id", "article_id")
    )
    for step_id, article_id in rows:
        by_step[step_id].append(article_id)
    return by_step


class SeriesSteps:
    """Steps of each series with their sendable articles; loaded once per series per run."""

    def __init__(self):
        self._by_series: dict[int, list[PlannedStep]] = {}

    def load(self, series_ids: set[int]) -> None:
        missing = [sid for sid in series_ids if sid not in self._by_series]
        if not missing:
            return
        steps = list(Step.objects.filter(series_id__in=missing).order_by("series_id", "position").values_list("id", "series_id", "position", "delay_days"))
        articles = _sendable_article_ids([s[0] for s in steps])
        for sid in missing:
            self._by_series[sid] = []
        for step_id, series_id, position, delay_days in steps:
            self._by_series[series_id].append(PlannedStep(step_id, position, delay_days, tuple(articles.get(step_id, ()))))

    def from_position(self, series_id: int | None, position: int) -> list[PlannedStep]:
        if series_id is None:
            return []
        return [s for s in self._by_series.get(series_id, []) if s.position >= position]


# --- the journey preview ---------------------------------------------------------------------


@dataclass(frozen=True)
class JourneyStep:
    step_id: int
    send_at: datetime
    article_ids: tuple[int, ...]


def simulate_journey(*, series_id: int, start: datetime, time_zone: str = "UTC", cadence: str = "as_planned") -> list[JourneyStep]:
    """The emails a subscriber confirming at `start` would get, and when: the planner's own rule
    (decide / next_send_time: delays, the gap between emails, cadence, the local daytime window)
    run forward on a simulated clock, with nothing written. Assumes the planner runs on time."""
    series_steps = SeriesSteps()
    series_steps.load({series_id})
    steps = series_steps.from_position(series_id, 0)
    subscriber = Subscriber(
        series_id=series_id, time_zone=time_zone, cadence=cadence, confirmed_at=start, next_step_position=0
    )
    journey: list[JourneyStep] = []
    received: set[int] = set()
    done: set[int] = set()
    now = start
    for _ in range(3 * len(steps) + 1):  # each step is deferred at most once, then sent or passed
        decision = decide(
            subscriber=subscriber, steps=steps, received=received, steps_done=done,
            last_email_at=journey[-1].send_at if journey else None, now=now,
        )
        if decision.step is not None:
            journey.append(JourneyStep(decision.step.id, now, tuple(decision.article_ids)))
            received.update(decision.article_ids)
            done.add(decision.step.id)
        subscriber.next_step_position = decision.next_step_position
        steps = series_steps.from_position(series_id, decision.next_step_position)
        if decision.next_send_at is None:
            break
        now = max(now, decision.next_send_at)
    return journey


# --- the due set --------------------------------------------------------------------------------


def due_subscribers(*, now: datetime) -> QuerySet[Subscriber]:
    """The planner's due query (served by the partial index subscriber_due_idx)."""
    return (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE, next_send_at__lte=now)
        .order_by("next_send_at")
        .only(
            "id", "series_id", "next_step_position", "next_send_at", "cadence", "time_zone", "confirmed_at", "last_sent_at"
        )
    )


def _locked_due_batch(now: datetime, batch_size: int) -> list[Subscriber]:
    qs = due_subscribers(now=now)
    if connection.features.has_select_for_update_skip_locked:
        # Another planner's locked rows are skipped, not waited for: each row is planned once.
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs[:batch_size])


@dataclass
class History:
    """What a batch of subscribers already has: received article ids, steps with a delivery,
    and when their last email went (or was queued to go)."""

    received: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    steps_done: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    last_email_at: dict[int, datetime] = field(default_factory=dict)


def _history(subscriber_ids: list[int]) -> History:
    """Two queries for the whole batch, whatever its size."""
    history = History()
    rows = list(
        Delivery.objects.filter(subscriber_id__in=subscriber_ids).values_list(
            "subscriber_id", "step_id", "status", "article_versions", "queued_at", "sent_at"
        )
    )
    steps_without_record: set[int] = set()
    for subscriber_id, step_id, status, article_versions, queued_at, sent_at in rows:
        history.steps_done[subscriber_id].add(step_id)
        if status not in RECEIVED_STATES:
            continue
        if article_versions:
            history.received[subscriber_id].update(int(k) for k in article_versions)
        else:
            steps_without_record.add(step_id)
        when = sent_at or queued_at
        if subscriber_id not in history.last_email_at or when > history.last_email_at[subscriber_id]:
            history.last_email_at[subscriber_id] = when
    if steps_without_record:  # rows from before article lists were recorded: count the step's articles
        step_articles = defaultdict(set)
        for step_id, article_id in StepArticle.objects.filter(step_id__in=steps_without_record).values_list("step_id", "article_id"):
            step_articles[step_id].add(article_id)
        for subscriber_id, step_id, status, article_versions, _q, _s in rows:
            if status in RECEIVED_STATES and not article_versions:
                history.received[subscriber_id].update(step_articles[step_id])
    return history


# --- one batch ----------------------------------------------------------------------------------


@dataclass
class Decision:
    """What to do for one subscriber: create a delivery for a step (with its articles), and
    where their schedule goes next."""

    step: PlannedStep | None
    article_ids: list[int]
    next_step_position: int
    next_send_at: datetime | None


def decide(
    *, subscriber: Subscriber, steps: list[PlannedStep], received: set[int], steps_done: set[int], last_email_at: datetime | None, now: datetime
) -> Decision:
    """Pick the next step worth sending and check the timing rule. Pure given its inputs.

    A step is worth sending when it has at least one published article the subscriber has not
    had; only those new articles go in the email (never an article twice). Steps with nothing new
    are passed over; a step that already has a delivery row (even failed) is never planned again.
    """
    known = [t for t in (last_email_at, subscriber.last_sent_at) if t is not None]
    last_sent = max(known) if known else None
    for index, step in enumerate(steps):
        if step.id in steps_done:
            continue
        new_articles = [a for a in step.article_ids if a not in received]
        if not new_articles:
            continue
        allowed_at = next_send_time(
            last_sent_at=last_sent,
            delay_days=step.delay_days,
            cadence=subscriber.cadence,
            time_zone=subscriber.time_zone,
            now=now,
            started_at=subscriber.confirmed_at,
        )
        if allowed_at > now:  # not yet: come back then, keep the place
            return Decision(None, [], step.position, allowed_at)
        following = steps[index + 1] if index + 1 < len(steps) else None
        next_at = None
        if following is not None:
            next_at = next_send_time(
                last_sent_at=now,
                delay_days=following.delay_days,
                cadence=subscriber.cadence,
                time_zone=subscriber.time_zone,
                now=now,
            )
        return Decision(step, new_articles, step.position + 1, next_at)
    # Nothing left to send in this series: the series is complete for them.
    end = (steps[-1].position + 1) if steps else subscriber.next_step_position
    return Decision(None, [], end, None)


@dataclass
class BatchResult:
    delivery_ids: list[int]
    subscribers_seen: int
    completed: int
    deferred: int


def plan_batch(*, now: datetime, batch_size: int, series_steps: SeriesSteps) -> BatchResult:
    """Plan one bounded batch inside the caller's transaction; a fixed number of queries."""
    batch = _locked_due_batch(now, batch_size)
    if not batch:
        return BatchResult([], 0, 0, 0)
    series_steps.load({s.series_id for s in batch if s.series_id is not None})
    history = _history([s.pk for s in batch])
    versions = dict(
        Article.objects.filter(
            pk__in={a for s in batch for st in series_steps.from_position(s.series_id, s.next_step_position) for a in st.article_ids}
        ).values_list("id", "version")
    )
    new_deliveries: list[Delivery] = []
    completed = deferred = 0
    for subscriber in batch:
        decision = decide(
            subscriber=subscriber,
            steps=series_steps.from_position(subscriber.series_id, subscriber.next_step_position),
            received=history.received[subscriber.pk],
            steps_done=history.steps_done[subscriber.pk],
            last_email_at=history.last_email_at.get(subscriber.pk),
            now=now,
        )
        subscriber.next_step_position = decision.next_step_position
        subscriber.next_send_at = decision.next_send_at
        if decision.step is not None:
            # The planned article list travels with the delivery; the sender records the
            # versions actually sent over it.
            new_deliveries.append(
                Delivery(
                    subscriber_id=subscriber.pk,
                    step_id=decision.step.id,
                    article_versions={str(a): versions.get(a, 1) for a in decision.article_ids},
                )
            )
        elif decision.next_send_at is None:
            completed += 1
        else:
            deferred += 1
    created = Delivery.objects.bulk_create(new_deliveries)
    # One UPDATE per distinct (position, time): a batch mostly moves together, and this is far
    # cheaper than a CASE per row (bulk_update) for the database and for Python.
    moves: dict[tuple[int, datetime | None], list[int]] = defaultdict(list)
    for subscriber in batch:
        moves[(subscriber.next_step_position, subscriber.next_send_at)].append(subscriber.pk)
    for (position, send_at), ids in moves.items():
        Subscriber.objects.filter(pk__in=ids).update(next_step_position=position, next_send_at=send_at)
    return BatchResult([d.pk for d in created], len(batch), completed, deferred)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class PlanResult:
    planned: int = 0
    subscribers_seen: int = 0
    completed: int = 0
    deferred: int = 0
    batches: int = 0


@contextlib.contextmanager
def planner_lock():
    """Where rows cannot be locked with SKIP LOCKED (SQLite: the local demo, one machine), only one
    planner runs at a time, held by an OS file lock next to the data. Yields False if another
    planner holds it (this run then does nothing; the other one plans)."""
    if connection.features.has_select_for_update_skip_locked:
        yield True
        return
    path = Path(settings.VAR_DIR) / "planner.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def plan_due_deliveries(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int = 10_000, on_batch_planned=None
) -> PlanResult:
    """Plan everything due at `now`, one bounded batch per transaction.

    `on_batch_planned(delivery_ids)` is called on each batch's commit (the task enqueues send
    batches there), so memory holds one batch, never the whole due set."""
    now = now or timezone.now()
    batch_size = batch_size or settings.NURTURE_PLAN_BATCH_SIZE
    result = PlanResult()
    with planner_lock() as acquired:
        if not acquired:
            logger.info("planner already running elsewhere; nothing planned by this run")
            return result
        series_steps = SeriesSteps()
        for _ in range(max_batches):
            with transaction.atomic():
                batch = plan_batch(now=now, batch_size=batch_size, series_steps=series_steps)
                if batch.delivery_ids and on_batch_planned is not None:
                    ids = batch.delivery_ids
                    transaction.on_commit(lambda ids=ids: on_batch_planned(ids))
            result.batches += 1
            result.planned += len(batch.delivery_ids)
            result.subscribers_seen += batch.subscribers_seen
            result.completed += batch.completed
            result.deferred += batch.deferred
            if batch.subscribers_seen < batch_size:
                break
    logger.log(
        logging.INFO if result.planned or result.completed else logging.DEBUG,  # nothing due: routine
        "planned deliveries=%d subscribers=%d deferred=%d completed=%d batches=%d",
        result.planned, result.subscribers_seen, result.deferred, result.completed, result.batches,
    )
    return result
