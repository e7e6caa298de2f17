"""The order of a series around a treatment date (pure)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nurture.rules import plan_order, treatment_starts_at

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


# --- in real planning and in the journey preview ---------------------------------------------------

import pytest  # noqa: E402
import time_machine  # noqa: E402

from nurture.models import Delivery, Step, Subscriber  # noqa: E402
from nurture.selectors.series import series_journey  # noqa: E402
from nurture.services import planning  # noqa: E402
from tests.helpers.scheduler import active_subscriber, series  # noqa: E402


@pytest.fixture
def real_days(settings):
    settings.NURTURE_DAY_SECONDS = 86400
    settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS = 2
    settings.NURTURE_SEND_WINDOW_START_HOUR = 9
    settings.NURTURE_SEND_WINDOW_END_HOUR = 17


def treatment_series():
    made = series("recently_diagnosed", [(0, ["w"]), (3, ["decide"]), (4, ["why"]), (3, ["insurance"]), (5, ["doctor"]), (4, ["records"])])
    Step.objects.filter(series=made, position__in=[1, 3, 5]).update(before_treatment=True)
    return made


def run_planner(subscriber: Subscriber, *, start: dt.datetime, days: int) -> list[tuple[int, dt.datetime]]:
    """Plan every hour for `days`, marking each planned email sent at once: (position, when)."""
    sent = []
    for hour in range(days * 24):
        now = start + dt.timedelta(hours=hour)
        with time_machine.travel(now, tick=False):
            before = set(Delivery.objects.values_list("id", flat=True))
            planning.deliveries_plan_due(now=now)
            for delivery in Delivery.objects.exclude(id__in=before).select_related("step"):
                Delivery.objects.filter(pk=delivery.pk).update(status="sent", sent_at=now)
                Subscriber.objects.filter(pk=subscriber.pk).update(last_sent_at=now)
                sent.append((delivery.step.position, now))
    return sent


@pytest.mark.django_db
def test_real_planning_front_loads_before_the_date_and_the_journey_preview_agrees(real_days):
    the_series = treatment_series()
    start = dt.datetime(2026, 6, 1, 10, tzinfo=UTC)  # a Monday, inside the window
    date = dt.date(2026, 6, 10)
    subscriber = active_subscriber("t@example.org", the_series, now=start, treatment_date=date)
    sent = run_planner(subscriber, start=start, days=20)
    order = [position for position, _when in sent]
    assert order[:4] == [0, 1, 3, 5]  # the welcome, then every before-treatment step
    starts = dt.datetime(2026, 6, 10, tzinfo=UTC)
    assert all(when < starts for position, when in sent if position in (1, 3, 5))
    assert sorted(order) == [0, 1, 2, 3, 4, 5] and order[4:] == [2, 4]  # then the rest, nothing twice
    gaps = [(b - a) for (_p, a), (_q, b) in zip(sent, sent[1:])]
    assert min(gaps) >= dt.timedelta(days=2)  # the usual spacing still holds
    assert all(9 <= when.hour < 17 for _p, when in sent)  # and the daytime window

    journey = series_journey(series_id=the_series.pk, start=start, treatment_date=date)
    assert [(e.step.position, e.send_at) for e in journey] == sent


@pytest.mark.django_db
def test_a_step_that_cannot_arrive_in_time_is_skipped_and_so_are_those_after_the_date(real_days):
    the_series = treatment_series()
    start = dt.datetime(2026, 6, 1, 10, tzinfo=UTC)
    subscriber = active_subscriber("u@example.org", the_series, now=start, treatment_date=dt.date(2026, 6, 4))
    order = [position for position, _when in run_planner(subscriber, start=start, days=20)]
    # Room before 4 June for the welcome (1 June) and one more (3 June); 3 and 5 are skipped.
    assert order == [0, 1, 2, 4]
    without = series_journey(series_id=the_series.pk, start=start)
    assert [e.step.position for e in without] == [0, 1, 2, 3, 4, 5]
