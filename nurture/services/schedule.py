"""The periodic schedule lives in the database (django-celery-beat) so staff can see and change it."""
from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from nurture.queues import TaskNames

AUTO_MARK = "Managed by nurture: interval follows NURTURE_DAY_SECONDS until edited."

# (periodic task name, celery task, seconds in production); scaled down with short demo days.
PERIODIC_TASKS = [
    ("Plan due deliveries", TaskNames.PLAN_DUE_DELIVERIES, 60),
    # Settles deliveries a lost worker left in "sending" or unknown too long, and re-enqueues queued
    # ones whose task was lost (a broker restart): often, so they wait a minute, not a quarter hour.
    ("Reconcile stuck deliveries", TaskNames.RECONCILE_DELIVERIES, 30),
    # Deletes data past its retention period (services/retention.py).
    ("Purge expired data", TaskNames.PURGE_EXPIRED_DATA, 86400),
    # The results page's summary per step and day (services/results.py); recomputes the recent days.
    ("Summarise results", TaskNames.RESULTS_SUMMARISE, 3600),
    # "Has anything changed?" emails that are due (services/checkins.py).
    ("Send check-ins", TaskNames.SEND_CHECKINS, 3600),
    # Emails clinical reviewers about articles falling due for review (30 days before, and when due).
    ("Remind reviewers of review dates", TaskNames.REVIEW_REMINDERS, 86400),
]


def scaled_interval(production_seconds: int) -> int:
    if settings.NURTURE_DAY_SECONDS == 86400:
        return production_seconds  # real days: as listed (the daily purge stays daily)
    # Plan at least five times per (demo) day, so a short day is not overshot by a whole beat.
    return max(1, min(production_seconds, round(settings.NURTURE_DAY_SECONDS / 5)))


def periodic_tasks_ensure() -> list[str]:
    """Create missing entries; re-scale ones still as nurture left them. Staff edits are kept."""
    changes = []
    for name, task, seconds in PERIODIC_TASKS:
        every = scaled_interval(seconds)
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        existing = PeriodicTask.objects.filter(name=name).first()
        # A run not started within its interval is dropped (the next one is due anyway), so a
        # worker that was busy or down never finds a pile of the same periodic task.
        expire = every
        if existing is None:
            PeriodicTask.objects.create(name=name, task=task, interval=interval, description=AUTO_MARK,
                                        expire_seconds=expire)
            changes.append(f"created {name!r} every {every}s")
        elif existing.description == AUTO_MARK and (existing.interval_id != interval.pk
                                                    or existing.expire_seconds != expire):
            existing.interval = interval
            existing.expire_seconds = expire
            existing.save()
            changes.append(f"re-scaled {name!r} to every {every}s")
    return changes
