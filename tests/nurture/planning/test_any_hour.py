"""The suite must pass at any hour of any day: a test that plans with real days and the real clock
must not depend on the production send window (09:00-17:00 local). tests/conftest.py opens the
window all day for tests; this guard plans at night, at the window's edges and at weekends, and
would fail (deferred, nothing planned) if that default went away."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine

from nurture.models import Delivery
from nurture.services import planning
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("instant", [
    datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc),  # Monday night
    datetime(2026, 12, 7, 8, 59, tzinfo=timezone.utc),  # a minute before a 09:00 window
    datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc),  # the minute a 17:00 window closes
    datetime(2026, 12, 12, 23, 30, tzinfo=timezone.utc),  # Saturday night
    datetime(2026, 12, 13, 12, 0, tzinfo=timezone.utc),  # Sunday noon
])
def test_a_test_planning_with_real_days_plans_whatever_the_hour(settings, instant):
    settings.NURTURE_DAY_SECONDS = 86400
    with time_machine.travel(instant, tick=False):
        active_subscriber("any-hour@example.org", series("in_treatment", [(0, ["any-hour"])]))
        assert planning.deliveries_plan_due().planned == 1
    assert Delivery.objects.count() == 1
