"""The end-to-end tests' worker and beat subprocesses (support/workers.py subprocess_env) read the
real clock, not the in-process tests' settings (tests/conftest.py opens the send window there). With
real days the production 09-17 window would defer every email planned at night or at a weekend, and
a test waiting for that email would fail between 17:00 and 09:00: their environment opens it too."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nurture import rules
from support import workers
from tests.e2e.conftest import WORKER_ENV

UTC = dt.timezone.utc
INSTANTS = [
    dt.datetime(2026, 12, 12, 23, 30, tzinfo=UTC),  # a Saturday night
    dt.datetime(2026, 12, 13, 3, 0, tzinfo=UTC),  # Sunday, small hours
    dt.datetime(2026, 12, 14, 8, 59, tzinfo=UTC),  # Monday, just before the production window
    dt.datetime(2026, 12, 18, 17, 0, tzinfo=UTC),  # Friday, as the production window closes
]


@pytest.mark.parametrize("extra", [None, WORKER_ENV], ids=["own-workers", "shared-stack"])
def test_worker_subprocesses_send_at_any_hour_of_any_day(monkeypatch, extra):
    monkeypatch.setattr(workers, "database_url_for_subprocess", lambda: "postgres://postgres@127.0.0.1:5432/test_x")
    env = workers.subprocess_env(broker_url="redis://127.0.0.1:6379/15", outbox_dir=Path("outbox"), day_seconds=86400,
                                 extra=extra)
    start, end = int(env["NURTURE_SEND_WINDOW_START_HOUR"]), int(env["NURTURE_SEND_WINDOW_END_HOUR"])
    for instant in INSTANTS:
        for zone in ("UTC", "Pacific/Auckland", "America/Los_Angeles"):
            planned = rules.next_send_time(last_sent_at=None, delay_days=0, cadence="", time_zone=zone, now=instant,
                                           day_seconds=86400, window_start_hour=start, window_end_hour=end)
            assert planned == instant, (instant, zone, planned)
