"""Planning: turn due subscribers into Delivery rows and move their schedule on.

The due set is `status=active and next_send_at <= now`, read in bounded batches through the
partial index subscriber_due_idx, so a run costs what is due rather than what exists. Each batch
costs a fixed number of queries (subscribers, their delivery history, their carer hand-offs in
force, one insert, one update),
whatever its size; series steps are read once per run. Rows are locked with SKIP LOCKED where the
database supports it (PostgreSQL), so several planners (two beats, several machines) never plan
the same subscriber twice; elsewhere (SQLite, the local demo) a file lock lets one planner run at
a time. The unique (subscriber, step) constraint is the last guard everywhere.

When is a subscriber's next email due, and which step? The pure rule in nurture.rules
(`next_send_time`, `decide`) answers; the journey preview runs the same rule. `next_send_at` on the subscriber is only a
hint for the due query: the planner re-checks the rule when it picks a subscriber, so whoever moved
next_send_at (confirmation, stage change, resume, staff) cannot make an email break the rules.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from nurture.models import Delivery, StepArticle, Subscriber
from nurture.rules import decide, timing_settings
from nurture import dialect
from nurture.selectors.deliveries import sending_brake_engaged
from nurture.selectors.series import SeriesSteps
from nurture.selectors.subscribers import carers_in_force, subscribers_due

logger = logging.getLogger(__name__)

# Deliveries in these states count as "had it": the article is not planned again.
# `unknown` too: the provider may have delivered it, so its articles are not planned again.
RECEIVED_STATES = (Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT, Delivery.Status.UNKNOWN)
# A planned, unsent delivery's article_versions holds its article ids with this in place of a version.
PLANNED_VERSION = 0


# --- the due set (subscribers_due), locked
# --------------------------------------------------------------------------------


DUE_FIELDS = (
    "id", "series_id", "next_step_position", "cadence", "time_zone", "confirmed_at", "last_sent_at",
    "treatment_date", "welcome_back_due", "quiet_days", "time_of_day",
)


@dataclass(slots=True)
class DueSubscriber:
    """What the planner reads of a due subscriber (the rule needs nothing else): a plain row, not
    a model instance, so a batch of thousands costs tuples rather than ORM objects."""

    id: int
    series_id: int | None
    next_step_position: int
    cadence: str
    time_zone: str
    confirmed_at: datetime | None
    last_sent_at: datetime | None
    treatment_date: date | None  # health data: read here, never logged
    welcome_back_due: bool
    quiet_days: str = ""  # the days and hours that suit them (nurture.rules)
    time_of_day: str = ""
    next_send_at: datetime | None = None  # where the planner moves them (not read: the rule decides)

    @property
    def pk(self) -> int:
        return self.id


def _locked_due_batch(now: datetime, batch_size: int) -> list[DueSubscriber]:
    qs = subscribers_due(now=now)
    if dialect.skips_locked_rows():
        # Another planner's locked rows are skipped, not waited for: each row is planned once.
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return [DueSubscriber(*row) for row in qs.values_list(*DUE_FIELDS)[:batch_size]]


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
    rows = dialect.delivery_history_rows(subscriber_ids)
    steps_without_record: set[int] = set()
    for subscriber_id, step_id, status, article_versions, queued_at, sent_at in rows:
        history.steps_done[subscriber_id].add(step_id)
        if status not in RECEIVED_STATES:
            continue
        if article_versions:
            history.received[subscriber_id].update(Delivery.read_article_versions(article_versions))
        else:
            steps_without_record.add(step_id)
        when = sent_at or queued_at
        if subscriber_id not in history.last_email_at or when > history.last_email_at[subscriber_id]:
            history.last_email_at[subscriber_id] = when
    if steps_without_record:  # rows from before article lists were recorded: count the step's articles
        step_articles = defaultdict(set)
        for step_id, article_id in StepArticle.objects.filter(step_id__in=steps_without_record).values_list("step_id",
            "article_id"):
            step_articles[step_id].add(article_id)
        for subscriber_id, step_id, status, article_versions, _q, _s in rows:
            if status in RECEIVED_STATES and not article_versions:
                history.received[subscriber_id].update(step_articles[step_id])
    return history


# --- one batch ----------------------------------------------------------------------------------


@dataclass
class BatchResult:
    delivery_ids: list[int]
    subscribers_seen: int
    completed: int
    deferred: int


def deliveries_plan_batch(*, now: datetime, batch_size: int, series_steps: SeriesSteps) -> BatchResult:
    """Plan one bounded batch inside the caller's transaction; a fixed number of queries."""
    batch = _locked_due_batch(now, batch_size)
    if not batch:
        return BatchResult([], 0, 0, 0)
    if sending_brake_engaged() is not None:
        # The complaint brake holds series sending: nobody is planned (their locks go with this
        # transaction) until staff resume it; asked only when someone is due, so idle costs nothing.
        logger.info("series sending paused by the complaint brake: %d due subscribers not planned", len(batch))
        return BatchResult([], 0, 0, 0)
    dialect.commit_without_waiting_for_disk()
    series_steps.load({s.series_id for s in batch if s.series_id is not None})
    history = _history([s.pk for s in batch])
    # (subscriber id, step id, planned article ids, opens with "welcome back")
    new_deliveries: list[tuple[int, int, dict, bool]] = []
    welcomed_back: list[int] = []
    completed = deferred = 0
    rules = timing_settings()
    for subscriber in batch:
        steps, starts_at = series_steps.for_subscriber(subscriber, now=now)  # a treatment date reorders them
        decision = decide(
            subscriber=subscriber,
            steps=steps,
            received=history.received[subscriber.pk],
            steps_done=history.steps_done[subscriber.pk],
            last_email_at=history.last_email_at.get(subscriber.pk),
            now=now,
            rules=rules,
            starts_at=starts_at,
        )
        subscriber.next_step_position = decision.next_step_position
        subscriber.next_send_at = decision.next_send_at
        if decision.step is not None:
            # The planned article ids travel with the delivery (the version, 0 here, is
            # recorded by the sender: the versions it actually rendered replace this list).
            new_deliveries.append(
                # The first email after a pause opens with "welcome back".
                (subscriber.pk, decision.step.id, {str(a): PLANNED_VERSION for a in decision.article_ids},
                 subscriber.welcome_back_due)
            )
            if subscriber.welcome_back_due:
                welcomed_back.append(subscriber.pk)
        elif decision.next_send_at is None:
            completed += 1
        else:
            deferred += 1
    created = dialect.deliveries_insert(_with_carer_copies(new_deliveries), now=now)
    dialect.subscribers_move([(s.pk, s.next_step_position, s.next_send_at) for s in batch])
    if welcomed_back:
        Subscriber.objects.filter(pk__in=welcomed_back).update(welcome_back_due=False)
    return BatchResult(created, len(batch), completed, deferred)


def _with_carer_copies(rows: list[tuple[int, int, dict, bool]]) -> list[tuple[int, int, dict, bool, int | None]]:
    """Every address its own delivery: each planned step becomes the subscriber's own copy (carer
    hand-off None) and, where a hand-off is in force, the carer's copy (its id); "instead of me"
    leaves the subscriber's own copy out. One query, two when someone in the batch has a carer."""
    carers = carers_in_force(subscriber_ids=[row[0] for row in rows]) if rows else {}
    expanded = []
    for sub, step, versions, welcome in rows:
        carer = carers.get(sub)
        if carer is None or not carer.instead:
            expanded.append((sub, step, versions, welcome, None))
        if carer is not None:
            expanded.append((sub, step, versions, False, carer.handoff_id))
    return expanded


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
    if dialect.skips_locked_rows():
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


def deliveries_plan_due(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int = 10_000, enqueue=None
) -> PlanResult:
    """Plan everything due at `now`, one bounded batch per transaction.

    `enqueue(delivery_ids)` is called on each batch's commit (the task passes the send-batch
    enqueuer; None: nothing is enqueued), so memory holds one batch per planner, never the whole
    due set. When the first batch was full (more is due) and the database can SKIP LOCKED, the rest
    is planned by NURTURE_PLAN_THREADS planners at once, each on its own connection: one planner's
    Python overlaps another's statements, and SKIP LOCKED keeps each subscriber to one of them.
    Inside an open transaction (tests) everything runs in the caller's connection."""
    now = now or timezone.now()
    batch_size = batch_size or settings.NURTURE_PLAN_BATCH_SIZE
    result = PlanResult()
    with planner_lock() as acquired:
        if not acquired:
            logger.info("planner already running elsewhere; nothing planned by this run")
            return result
        full = _plan_batches(now=now, batch_size=batch_size, max_batches=1, enqueue=enqueue, result=result)
        if full and max_batches > 1:
            threads = settings.NURTURE_PLAN_THREADS
            if threads > 1 and dialect.skips_locked_rows() and not connection.in_atomic_block:
                _plan_in_threads(threads, now=now, batch_size=batch_size, max_batches=max_batches - 1, enqueue=enqueue,
                                 result=result)
            else:
                _plan_batches(now=now, batch_size=batch_size, max_batches=max_batches - 1, enqueue=enqueue,
                              result=result)
    logger.log(
        logging.INFO if result.planned or result.completed else logging.DEBUG,  # nothing due: routine
        "planned deliveries=%d subscribers=%d deferred=%d completed=%d batches=%d",
        result.planned, result.subscribers_seen, result.deferred, result.completed, result.batches,
    )
    return result


def _plan_batches(*, now: datetime, batch_size: int, max_batches: int, enqueue, result: PlanResult, lock=None) -> bool:
    """Batches until one comes back short (nothing more due) or max_batches; adds to `result`.
    Returns True if the last batch was full (more may be due)."""
    series_steps = SeriesSteps()
    for _ in range(max_batches):
        with transaction.atomic():
            batch = deliveries_plan_batch(now=now, batch_size=batch_size, series_steps=series_steps)
            if batch.delivery_ids and enqueue is not None:
                ids = batch.delivery_ids
                transaction.on_commit(lambda ids=ids: enqueue(ids))
        with lock or contextlib.nullcontext():
            result.batches += 1
            result.planned += len(batch.delivery_ids)
            result.subscribers_seen += batch.subscribers_seen
            result.completed += batch.completed
            result.deferred += batch.deferred
        if batch.subscribers_seen < batch_size:
            return False
    return True


def _plan_in_threads(threads: int, *, max_batches: int, result: PlanResult, **plan) -> None:
    """`threads` planners (this thread and threads - 1 more), each with its own connection."""
    lock, errors = threading.Lock(), []
    share = -(-max_batches // threads)

    def planner() -> None:
        try:
            _plan_batches(max_batches=share, result=result, lock=lock, **plan)
        except Exception as exc:  # re-raised in the caller's thread below
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connections only

    others = [threading.Thread(target=planner, name=f"planner-{i}") for i in range(1, threads)]
    for thread in others:
        thread.start()
    try:
        _plan_batches(max_batches=share, result=result, lock=lock, **plan)
    finally:
        for thread in others:
            thread.join()
    if errors:
        raise errors[0]
