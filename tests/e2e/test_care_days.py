"""Days and hours that suit them, with a real Celery worker and beat over real Redis and PostgreSQL on
real days (NURTURE_DAY_SECONDS=86400, the send window open all day so every part of the day is
offered): the real planner sends at once to someone whose chosen part of the day is now, and holds
back someone whose part has not come, or whose today is a quiet day, until exactly the instant the
rule gives in their time zone. (The DST cases are pinned with a fixed clock in
tests/nurture/care/test_days_and_formats.py: the real clock cannot be moved for worker processes.)"""
from __future__ import annotations

import io
import re
import zoneinfo
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from nurture import rules
from nurture.models import Delivery, Subscriber
from support.workers import CeleryProcess, subprocess_env, use_broker_in_this_process, wait_for
from tests.e2e.test_care import messages, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.services]

ZONE = "Pacific/Auckland"  # far from UTC: local hours and weekdays differ from the server's


@pytest.fixture
def real_days(transactional_db, postgres, redis_url, tmp_path, settings):
    settings.NURTURE_DAY_SECONDS = 86400
    settings.NURTURE_SEND_WINDOW_START_HOUR, settings.NURTURE_SEND_WINDOW_END_HOUR = 0, 24
    settings.NURTURE_OUTBOX_DIR = tmp_path / "outbox"
    call_command("load_content", verbosity=0)
    # With DEBUG off only reviewed text is sent: approve the library as an operator does.
    from support.library import sample_reviewer

    call_command("approve_articles", "--reviewer", sample_reviewer().get_username(), stdout=io.StringIO())
    from nurture.services.schedule import periodic_tasks_ensure

    periodic_tasks_ensure()
    # The planner every 2 s rather than every minute, as staff may set it (an edited entry is kept):
    # the test waits for the planner's first runs, not for the clock.
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    assert PeriodicTask.objects.filter(task="nurture.plan_due_deliveries").update(interval=every_2s, description="") == 1
    use_broker_in_this_process(redis_url)
    env = subprocess_env(broker_url=redis_url, outbox_dir=settings.NURTURE_OUTBOX_DIR, day_seconds=86400,
                         extra={"NURTURE_SEND_WINDOW_START_HOUR": "0", "NURTURE_SEND_WINDOW_END_HOUR": "24"})
    processes = [CeleryProcess("worker", "days-worker", env, tmp_path), CeleryProcess("beat", "days-beat", env, tmp_path)]
    try:
        for process in processes:
            process.start()
        yield settings.NURTURE_OUTBOX_DIR
        for process in processes:
            assert "Traceback" not in process.log(), process.log()[-3000:]
    finally:
        for process in processes:
            process.stop()


def confirmed_with(client, outbox, address: str, **choices) -> Subscriber:
    """Signed up in ZONE, days and hours chosen before confirming (so the first email follows them)."""
    response = client.post("/", {"email": address, "stage": "in_treatment", "language": "en", "consent": "on", "time_zone": ZONE})
    assert response.status_code == 302
    confirmation = wait_for(lambda: messages(outbox, address), timeout=60, message="the confirmation email")[0]
    person = Subscriber.objects.get(email=address)
    Subscriber.objects.filter(pk=person.pk).update(**choices)
    confirm_url = re.search(r"https://guide\.example\.org(/confirm/[^/\s]+/)", text_of(confirmation)).group(1)
    assert client.post(confirm_url).status_code == 200
    return person


def test_chosen_days_and_hours_are_honoured_by_the_real_planner(real_days, client):
    outbox = real_days
    local_now = timezone.now().astimezone(zoneinfo.ZoneInfo(ZONE))
    part_now = next(p for p, (low, high) in rules.DAY_PARTS.items() if low <= local_now.hour < high)
    other_part = next(p for p in rules.DAY_PARTS if p != part_now)
    minutes_left = (rules.DAY_PARTS[part_now][1] - local_now.hour) * 60 - local_now.minute
    # Within minutes of the part's end the planner could already be past it: then "any time".
    confirmed_with(client, outbox, "now.ok@example.org", time_of_day=part_now if minutes_left > 5 else "")
    later_part = confirmed_with(client, outbox, "later.part@example.org", time_of_day=other_part)
    quiet_today = confirmed_with(client, outbox, "quiet.today@example.org", quiet_days=str(local_now.weekday()))

    wait_for(lambda: messages(outbox, "now.ok@example.org")[1:], timeout=90, message="the first email, in the chosen part of the day")
    for person in (later_part, quiet_today):  # the planner has looked at them and moved them on
        wait_for(lambda p=person: Subscriber.objects.get(pk=p.pk).next_send_at > timezone.now() + timedelta(minutes=1),
                 timeout=90, message="the planner deferring a person to their own time")
    for person in (later_part, quiet_today):
        person.refresh_from_db()
        expected = rules.next_send_time(
            last_sent_at=None, delay_days=0, cadence=person.cadence, time_zone=ZONE, now=person.confirmed_at,
            started_at=person.confirmed_at, day_seconds=86400, window_start_hour=0, window_end_hour=24,
            quiet_days=person.quiet_days, time_of_day=person.time_of_day,
        )
        local = person.next_send_at.astimezone(zoneinfo.ZoneInfo(ZONE))
        assert abs(person.next_send_at - expected) < timedelta(seconds=5)
        assert local.weekday() not in rules.parse_quiet_days(person.quiet_days)
        low, high = rules.day_part_hours(person.time_of_day, start_hour=0, end_hour=24)
        assert low <= local.hour < high
        assert len(messages(outbox, person.email)) == 1  # the confirmation only: nothing before their time
        assert not Delivery.objects.filter(subscriber=person).exists()
