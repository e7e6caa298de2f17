"""The timing rule (nurture.rules.next_send_time): pure, no database."""
from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta, timezone

import pytest

from nurture.rules import next_send_time

UTC = timezone.utc
NY = "America/New_York"
REAL_DAY = 86400


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def local(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(zoneinfo.ZoneInfo(zone))


def rule(**kwargs) -> datetime:
    defaults = dict(
        cadence="as_planned", day_seconds=REAL_DAY, min_days_between=2, window_start_hour=9, window_end_hour=17, started_at=None
    )
    return next_send_time(**{**defaults, **kwargs})


def test_delay_counts_from_last_email_and_lands_inside_the_window():
    sent = at("2026-05-04T10:00:00-04:00")  # Monday 10:00 in New York
    result = rule(last_sent_at=sent, delay_days=3, time_zone=NY, now=sent)
    assert result == sent + timedelta(days=3)
    assert local(result, NY).hour == 10


def test_after_the_window_moves_to_next_mornings_opening():
    sent = at("2026-05-04T16:30:00-04:00")
    now = at("2026-05-06T18:00:00-04:00")
    result = rule(last_sent_at=sent, delay_days=2, time_zone=NY, now=now)
    assert local(result, NY) == datetime(2026, 5, 7, 9, 0, tzinfo=zoneinfo.ZoneInfo(NY))


def test_before_the_window_waits_for_the_same_days_opening():
    result = rule(last_sent_at=None, delay_days=0, time_zone=NY, now=at("2026-05-06T05:15:00-04:00"))
    assert result == at("2026-05-06T09:00:00-04:00")


def test_inside_the_window_goes_now():
    now = at("2026-05-06T12:34:00-04:00")
    assert rule(last_sent_at=None, delay_days=0, time_zone=NY, now=now) == now


def test_frequency_cap_holds_even_for_a_zero_delay_step():
    sent = at("2026-05-04T10:00:00Z")
    now = sent + timedelta(days=1)
    result = rule(last_sent_at=sent, delay_days=0, time_zone="UTC", now=now)
    assert result == sent + timedelta(days=2)


@pytest.mark.parametrize("cadence, days", [("as_planned", 3), ("weekly", 7), ("monthly", 30)])
def test_cadence_is_a_floor_on_the_gap(cadence, days):
    sent = at("2026-05-04T10:00:00Z")
    result = rule(last_sent_at=sent, delay_days=3, cadence=cadence, time_zone="UTC", now=sent)
    assert result == sent + timedelta(days=days)


def test_first_email_delay_counts_from_the_series_start_and_cap_does_not_apply():
    confirmed = at("2026-05-04T10:00:00Z")
    now = confirmed + timedelta(hours=1)
    assert rule(last_sent_at=None, delay_days=0, time_zone="UTC", now=now, started_at=confirmed) == now
    assert rule(last_sent_at=None, delay_days=1, time_zone="UTC", now=now, started_at=confirmed) == confirmed + timedelta(days=1)


def test_spring_forward_opening_is_nine_local_not_eight_or_ten():
    # 2026-03-08: New York skips 02:00-03:00. Midnight EST -> 09:00 EDT (13:00Z, not 14:00Z).
    result = rule(last_sent_at=None, delay_days=0, time_zone=NY, now=at("2026-03-08T00:00:00-05:00"))
    assert result == at("2026-03-08T13:00:00Z")
    assert local(result, NY).hour == 9


def test_fall_back_opening_is_nine_local():
    # 2026-11-01: 01:00-02:00 happens twice. From 01:30 (first) the opening is 09:00 EST = 14:00Z.
    now = datetime(2026, 11, 1, 1, 30, tzinfo=zoneinfo.ZoneInfo(NY), fold=0).astimezone(UTC)
    result = rule(last_sent_at=None, delay_days=0, time_zone=NY, now=now)
    assert result == at("2026-11-01T14:00:00Z")


def test_ambiguous_opening_takes_its_first_occurrence():
    # A window opening at 01:00 on the fall-back night: 01:00 EDT (05:00Z), not 01:00 EST (06:00Z).
    result = rule(last_sent_at=None, delay_days=0, time_zone=NY, now=at("2026-11-01T04:00:00Z"), window_start_hour=1, window_end_hour=5)
    assert result == at("2026-11-01T05:00:00Z")


def test_nonexistent_opening_moves_forward_by_the_gap():
    # A window opening at 02:00 on the spring-forward night: 02:00 does not exist -> 03:00 EDT.
    result = rule(last_sent_at=None, delay_days=0, time_zone=NY, now=at("2026-03-08T05:00:00Z"), window_start_hour=2, window_end_hour=6)
    assert result == at("2026-03-08T07:00:00Z")
    assert local(result, NY).hour == 3


def test_auckland_across_its_april_clock_change():
    # 2026-04-05 03:00 NZDT -> 02:00 NZST. 23:00 NZDT on the 4th -> 09:00 NZST on the 5th = 21:00Z.
    result = rule(last_sent_at=None, delay_days=0, time_zone="Pacific/Auckland", now=at("2026-04-04T10:00:00Z"))
    assert result == at("2026-04-04T21:00:00Z")
    assert local(result, "Pacific/Auckland").hour == 9


def test_kolkata_half_hour_offset():
    # 17:30 IST is past the window: next opening 09:00 IST = 03:30Z.
    result = rule(last_sent_at=None, delay_days=0, time_zone="Asia/Kolkata", now=at("2026-06-01T12:00:00Z"))
    assert result == at("2026-06-02T03:30:00Z")


@pytest.mark.parametrize("start", ["2026-03-01T10:00:00-05:00", "2026-10-25T10:00:00-04:00"])
def test_daily_sends_across_a_clock_change_neither_skip_nor_double_a_day(start):
    """A one-day series sent on each planner decision for two weeks around a clock change: one
    email per local date, no date missed, never under 24 hours apart."""
    sent = at(start)
    sends = [sent]
    for _ in range(14):
        sent = rule(last_sent_at=sent, delay_days=1, min_days_between=1, time_zone=NY, now=sent)
        sends.append(sent)
    dates = [local(s, NY).date() for s in sends]
    assert len(set(dates)) == len(dates)
    assert all((b - a).days == 1 for a, b in zip(dates, dates[1:]))
    assert all(b - a >= timedelta(hours=24) for a, b in zip(sends, sends[1:]))
    assert all(9 <= local(s, NY).hour < 17 for s in sends)


def test_short_demo_days_skip_the_window_but_keep_the_cap_in_days():
    sent = at("2026-05-04T23:00:00Z")  # outside any daytime window in UTC
    now = sent + timedelta(seconds=1)
    result = rule(last_sent_at=sent, delay_days=0, time_zone="UTC", now=now, day_seconds=5)
    assert result == sent + timedelta(seconds=10)  # 2 "days" of 5 s, not pushed to 09:00


def test_durations_are_absolute_even_when_given_local_datetimes():
    # Friday 16:30 EST + 2 days = Sunday 21:30Z = 17:30 EDT (past the window) -> Monday 09:00 EDT.
    friday = datetime(2026, 3, 6, 16, 30, tzinfo=zoneinfo.ZoneInfo(NY))
    result = rule(last_sent_at=friday, delay_days=2, time_zone=NY, now=friday)
    assert result == at("2026-03-09T13:00:00Z")
    assert rule(last_sent_at=friday, delay_days=2, time_zone=NY, now=friday, window_end_hour=24) == friday.astimezone(UTC) + timedelta(hours=48)


def test_an_unknown_zone_falls_back_to_utc_instead_of_failing_the_batch():
    result = rule(last_sent_at=None, delay_days=0, time_zone="Mars/Olympus_Mons", now=at("2026-06-01T20:00:00Z"))
    assert result == at("2026-06-02T09:00:00Z")
