"""The order of a series around a treatment date (pure)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nurture.services.treatment import plan_order, treatment_starts_at

UTC = dt.timezone.utc


@dataclass(frozen=True)
class S:
    id: int
    position: int
    delay_days: int
    article_ids: tuple = ()
    before_treatment: bool = False


STEPS = [S(1, 0, 0), S(2, 1, 3, before_treatment=True), S(3, 2, 3), S(4, 3, 4, before_treatment=True), S(5, 4, 5)]
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_without_a_date_the_series_order_is_kept():
    assert [s.id for s in plan_order(STEPS, position=0, starts_at=None, now=NOW)] == [1, 2, 3, 4, 5]
    assert [s.id for s in plan_order(STEPS, position=2, starts_at=None, now=NOW)] == [3, 4, 5]


def test_before_the_date_the_opening_then_before_treatment_steps_come_first_without_delay():
    starts = NOW + dt.timedelta(days=10)
    order = plan_order(STEPS, position=0, starts_at=starts, now=NOW)
    assert [s.id for s in order] == [1, 2, 4, 3, 5]
    assert [s.delay_days for s in order] == [0, 0, 0, 3, 5]
    # Later in the series, before-treatment steps behind the place are still offered (decide() skips sent ones).
    assert [s.id for s in plan_order(STEPS, position=4, starts_at=starts, now=NOW)] == [2, 4, 5]


def test_from_the_date_on_the_before_treatment_steps_are_skipped():
    assert [s.id for s in plan_order(STEPS, position=1, starts_at=NOW, now=NOW)] == [3, 5]


def test_the_day_starts_at_local_midnight():
    assert treatment_starts_at(dt.date(2026, 7, 1), time_zone="America/Mexico_City") == dt.datetime(2026, 7, 1, 6, tzinfo=UTC)
    assert treatment_starts_at(None, time_zone="UTC") is None
    assert treatment_starts_at(dt.date(2026, 7, 1), time_zone="Not/AZone") == dt.datetime(2026, 7, 1, tzinfo=UTC)
