"""The planner's rule, pure: when may the next email go, and which step is worth sending.

No database and no writes: the planner (services.planning) runs it on due subscribers, and the
journey preview (selectors/series.py, series_journey) runs it forward on a simulated clock, so the preview
cannot drift from what is sent. Settings only fill in defaults.

When is a subscriber's next email due? `next_send_time` answers: the earliest instant that is at
least the step's delay after their last email, at least NURTURE_MIN_DAYS_BETWEEN_EMAILS after it,
at least their cadence (weekly 7, monthly 30 days) after it, and inside their local daytime window.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings

from nurture.models import Subscriber

REAL_DAY_SECONDS = 86400
CADENCE_DAYS = {
    Subscriber.Cadence.AS_PLANNED: 0,
    Subscriber.Cadence.WEEKLY: 7,
    Subscriber.Cadence.MONTHLY: 30,
}

# --- the rule: when may the next email go? ----------------------------------------------------


def _wall_to_instant(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """A local wall-clock time as an aware instant. Ambiguous (fall-back) times take their first
    occurrence (fold=0, the earlier instant); nonexistent (spring-forward gap) times are moved
    forward by the gap, as calendars do (zoneinfo's fold=0 reading of a gap time does exactly that)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(dt_timezone.utc)


# Parts of the day a person may choose (preference centre), as local hours [from, to); each is cut
# to the organisation's window, and only parts that overlap it are offered.
DAY_PARTS = {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24)}


def day_part_hours(part: str, *, start_hour: int, end_hour: int) -> tuple[int, int]:
    """The window [start, end) for a chosen part of the day, inside the organisation's window. The
    whole window for "" or a part that does not overlap it (it is then not offered)."""
    low, high = DAY_PARTS.get(part, (start_hour, end_hour))
    low, high = max(low, start_hour), min(high, end_hour)
    return (low, high) if low < high else (start_hour, end_hour)


def offered_day_parts(*, start_hour: int, end_hour: int) -> list[str]:
    return [p for p, (low, high) in DAY_PARTS.items() if max(low, start_hour) < min(high, end_hour)]


def parse_quiet_days(value: str) -> frozenset[int]:
    """"5,6" -> {5, 6}; anything else in the field is ignored. All seven: none (never silence everything)."""
    days = frozenset(int(d) for d in (value or "").split(",") if d.strip().isdigit() and int(d) < 7)
    return days if len(days) < 7 else frozenset()


def into_send_window(
    instant: datetime, *, time_zone: str, start_hour: int, end_hour: int, quiet_days: frozenset[int] = frozenset(),
) -> datetime:
    """The earliest instant >= `instant` whose local wall time is in [start_hour:00, end_hour:00),
    on a local weekday not in `quiet_days`.

    Worked in local wall time (the next opening is "tomorrow at 09:00 local", never "+24 hours"),
    so a daylight-saving change moves the instant, not the local hour, and no day is skipped or
    doubled."""
    try:
        tz = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # Validated on save; a zone that later vanished from tzdata must not stall a whole batch.
        tz = zoneinfo.ZoneInfo("UTC")
    local = instant.astimezone(tz)
    if start_hour <= local.hour < end_hour and local.weekday() not in quiet_days:
        return instant
    opening_day: date = local.date() if local.hour < start_hour else local.date() + timedelta(days=1)
    # A window lost in a DST gap (e.g. 02:00-03:00) moves to the next day; quiet days add up to six.
    for offset in range(10):
        day = opening_day + timedelta(days=offset)
        if day.weekday() in quiet_days:
            continue
        candidate = _wall_to_instant(datetime.combine(day, time(start_hour)), tz)
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
    quiet_days: str = "",
    time_of_day: str = "",
) -> datetime:
    """The earliest instant the next email may go out. Pure: settings only fill in defaults.

    - the step's delay counts from the last email (or from `started_at`, e.g. confirmation, when
      there has been none); the frequency cap and the cadence count from the last email;
    - durations are absolute (a "day" is NURTURE_DAY_SECONDS), so a cap of 2 days is never less
      than 48 hours, even across a daylight-saving change;
    - then the result is pushed into the next local daytime window (the part of it they chose,
      on a day that is not one of their quiet days). With demo/test days
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
        start_hour, end_hour = day_part_hours(time_of_day, start_hour=start_hour, end_hour=end_hour)
        earliest = into_send_window(earliest, time_zone=time_zone, start_hour=start_hour, end_hour=end_hour,
                                    quiet_days=parse_quiet_days(quiet_days))
    return earliest



# --- which step: worth sending, and when its turn comes --------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    id: int
    position: int
    delay_days: int
    article_ids: tuple[int, ...]  # published articles, in the step's order
    before_treatment: bool = False  # front-loaded for someone with a treatment date (plan_order)


@dataclass
class Decision:
    """What to do for one subscriber: create a delivery for a step (with its articles), and
    where their schedule goes next."""

    step: PlannedStep | None
    article_ids: list[int]
    next_step_position: int
    next_send_at: datetime | None


def timing_settings() -> dict:
    """The settings next_send_time would read, read once: a planning batch passes them to every
    decide() call instead of reading settings four times per call."""
    return {
        "day_seconds": settings.NURTURE_DAY_SECONDS,
        "min_days_between": settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS,
        "window_start_hour": settings.NURTURE_SEND_WINDOW_START_HOUR,
        "window_end_hour": settings.NURTURE_SEND_WINDOW_END_HOUR,
    }


def decide(
    *, subscriber: Subscriber, steps: list[PlannedStep], received: set[int], steps_done: set[int],
    last_email_at: datetime | None, now: datetime,
    rules: dict | None = None,
    starts_at: datetime | None = None,
) -> Decision:
    """Pick the next step worth sending and check the timing rule. Pure given its inputs.

    A step is worth sending when it has at least one published article the subscriber has not
    had; only those new articles go in the email (never an article twice). Steps with nothing new
    are passed over; a step that already has a delivery row (even failed) is never planned again.
    `rules`: timing_settings(), when the caller has read them already.

    With a treatment date (`starts_at`, and `steps` in plan_order's order): a before-treatment step
    that could not go before that instant is passed over (its moment has passed), and sending one
    early does not move the subscriber's place in the series.
    """
    rules = rules or {}
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
            quiet_days=subscriber.quiet_days,
            time_of_day=subscriber.time_of_day,
            **rules,
        )
        early = starts_at is not None and step.before_treatment
        if early and allowed_at >= starts_at:
            continue  # it could not arrive before treatment starts
        place = subscriber.next_step_position if early else step.position
        if allowed_at > now:  # not yet: come back then, keep the place
            return Decision(None, [], place, allowed_at)
        following = steps[index + 1] if index + 1 < len(steps) else None
        next_at = None
        if following is not None:
            next_at = next_send_time(
                last_sent_at=now,
                delay_days=following.delay_days,
                cadence=subscriber.cadence,
                time_zone=subscriber.time_zone,
                now=now,
                quiet_days=subscriber.quiet_days,
                time_of_day=subscriber.time_of_day,
                **rules,
            )
        return Decision(step, new_articles, place if early else step.position + 1, next_at)
    # Nothing left to send in this series: the series is complete for them.
    end = max([subscriber.next_step_position, *(s.position + 1 for s in steps)])
    return Decision(None, [], end, None)


# --- a date to plan around: the order of a series around a treatment date --------------------------
# For someone who gave the date their treatment is planned to start (the planner and the journey
# preview both use this, so the preview shows what planning does):
# - before that day: the series' opening step (its welcome) if still ahead, then the steps marked
#   "before treatment" not yet sent, in series order and with no delay of their own (so they go as
#   fast as the gap between emails, the cadence and the daytime window allow), then the other
#   steps from the subscriber's place as usual; one that could not arrive before the day is passed
#   over (decide() checks it against `starts_at`);
# - from that day on: the before-treatment steps not yet sent are skipped; the rest go as usual.
# The date is health data: read here and in the subscriber row only, never logged.


def treatment_starts_at(treatment_date: dt.date | None, *, time_zone: str) -> dt.datetime | None:
    """The start of that day in the subscriber's zone, as an aware UTC instant (None: no date)."""
    if treatment_date is None:
        return None
    try:
        tz = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    return dt.datetime.combine(treatment_date, dt.time(0), tzinfo=tz).astimezone(dt_timezone.utc)


def plan_order(all_steps: list, *, position: int, starts_at: dt.datetime | None, now: dt.datetime) -> list:
    """The steps to consider, in order, for a subscriber at `position` (see above).
    `all_steps`: the series' PlannedSteps in position order. Without a date: steps from `position`."""
    if starts_at is None:
        return [s for s in all_steps if s.position >= position]
    later = [s for s in all_steps if s.position >= position and not s.before_treatment]
    if now >= starts_at:
        return later
    early = [replace(s, delay_days=0) for s in all_steps if s.before_treatment]
    opening = [s for s in later if s.position == 0]
    return opening + early + [s for s in later if s.position != 0]
