"""The planner's rule, pure: when may the next email go, and which step is worth sending.

No database and no writes: the planner (services.planning) runs it on due subscribers, and the
journey preview (selectors.series_journey) runs it forward on a simulated clock, so the preview
cannot drift from what is sent. Settings only fill in defaults.

When is a subscriber's next email due? `next_send_time` answers: the earliest instant that is at
least the step's delay after their last email, at least NURTURE_MIN_DAYS_BETWEEN_EMAILS after it,
at least their cadence (weekly 7, monthly 30 days) after it, and inside their local daytime window.
"""
from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
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



# --- which step: worth sending, and when its turn comes --------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    id: int
    position: int
    delay_days: int
    article_ids: tuple[int, ...]  # published articles, in the step's order


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
