"""A date to plan around: the order of a series for someone who gave the date their treatment is
planned to start. Pure functions over the planner's steps; the planner (services.planning) and the
journey preview both use them, so the preview shows what planning does.

- Before that day: the series' opening step (its welcome) if still ahead, then the steps marked
  "before treatment" (those not yet sent, in series order), with no delay of their own, so they go as fast as the gap between emails, the cadence and
  the daytime window allow; then the other steps from the subscriber's place, as usual.
- A before-treatment step that could not arrive before the day is passed over (decide() checks the
  time it would go against `starts_at`).
- From that day on: the before-treatment steps not yet sent are skipped; the rest go as usual.

The date is health data: it is read here and in the subscriber row only, never logged.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import replace
from datetime import timezone as dt_timezone


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
    """The steps to consider, in order, for a subscriber at `position` (see the module docstring).
    `all_steps`: the series' PlannedSteps in position order. Without a date: steps from `position`."""
    if starts_at is None:
        return [s for s in all_steps if s.position >= position]
    later = [s for s in all_steps if s.position >= position and not s.before_treatment]
    if now >= starts_at:
        return later
    early = [replace(s, delay_days=0) for s in all_steps if s.before_treatment]
    opening = [s for s in later if s.position == 0]
    return opening + early + [s for s in later if s.position != 0]
