"""The results summary: per step and day (UTC), what the emails sent that day achieved.

One writer, `results_summarise`, run hourly by the beat task TaskNames.RESULTS_SUMMARISE (periodic
queue). It recomputes the recent days (NURTURE_RESULTS_LEAVE_WINDOW_DAYS + RECOMPUTE_MARGIN_DAYS, so
late provider events and departures still land on the day of the email they follow) and, on the
first run, every day since the first email. The results page (nurture/selectors/results.py) reads only the
summary, so it answers in a few milliseconds whatever the number of deliveries.

Counts only: the table holds no subscriber id, address, name or stage; a step's series says which
stage and language it is for. Older days are kept as they were summarised, so the figures survive the
retention purge and erasure of the people behind them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from nurture.models import Delivery, ProviderEvent, StepDailyResults
from nurture.selectors.results import DEPARTURE_KINDS, EVENT_FIGURES, FIGURES, departure_times

# Extra days recomputed beyond the leave window, for provider events that arrive late.
RECOMPUTE_MARGIN_DAYS = 2
# The first run (or a rebuild) walks history in chunks of this many days.
CHUNK_DAYS = 31
DEPARTURE_FIGURE = {"unsubscribe": "unsubscribed", "pause": "paused"}


@dataclass(frozen=True)
class SummaryOutcome:
    first_day: date | None
    last_day: date | None
    rows: int


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)


def _send_figures(*, start: datetime, end: datetime) -> dict[tuple[int, date], dict[str, int]]:
    """(step id, day) -> sent and event figures for the emails sent in [start, end): two grouped
    queries, both starting from the deliveries sent in the range (the sent_at index); the events
    are reached through their (delivery, event_type) index."""
    in_range = {"status": Delivery.Status.SENT, "sent_at__gte": start, "sent_at__lt": end}
    by_key: dict[tuple[int, date], dict[str, int]] = {}
    sent = (
        Delivery.objects.filter(**in_range)
        .annotate(day=TruncDate("sent_at", tzinfo=dt_timezone.utc))
        .order_by()
        .values_list("step_id", "day")
        .annotate(n=Count("id"))
    )
    for step_id, day, n in sent:
        by_key[(step_id, day)] = {"sent": n}
    events = (
        # Only events that match a message we sent to that address (an unmatched one may be forged).
        ProviderEvent.objects.filter(event_type__in=EVENT_FIGURES, matched=True,
                                     **{f"delivery__{k}": v for k, v in in_range.items()})
        .annotate(day=TruncDate("delivery__sent_at", tzinfo=dt_timezone.utc))
        .order_by()
        .values_list("delivery__step_id", "day", "event_type")
        .annotate(n=Count("delivery_id", distinct=True))  # an email opened five times counts once
    )
    for step_id, day, event_type, n in events:
        by_key.setdefault((step_id, day), {"sent": 0})[event_type] = n  # each figure is named after its event type
    return by_key


def _departure_figures(*, start: datetime, end: datetime, window: timedelta) -> dict[tuple[int, date], dict[str, int]]:
    """(step id, day) -> unsubscribed / paused: each departure counts against the last email the person
    had before it, when that email was sent in [start, end) and at most `window` before the departure."""
    figures: dict[tuple[int, date], dict[str, int]] = defaultdict(dict)
    for kind in DEPARTURE_KINDS:
        departures = departure_times(kind=kind)
        if departures is None:
            continue  # not recorded: the page shows "—"
        last_email = Delivery.objects.filter(
            subscriber_id=OuterRef("who"), status=Delivery.Status.SENT, sent_at__lte=OuterRef("at")
        ).order_by("-sent_at", "-id")
        rows = (
            departures.filter(at__gte=start, at__lt=end + window)
            .annotate(
                email_step=Subquery(last_email.values("step_id")[:1]),
                email_sent_at=Subquery(last_email.values("sent_at")[:1]),
            )
            .values_list("at", "email_step", "email_sent_at")
        )
        figure = DEPARTURE_FIGURE[kind]
        for at, step_id, sent_at in rows.iterator(chunk_size=5000):
            if step_id is None or not (start <= sent_at < end) or at - sent_at > window:
                continue
            key = (step_id, sent_at.astimezone(dt_timezone.utc).date())
            figures[key][figure] = figures[key].get(figure, 0) + 1
    return figures


def _summarise_days(*, first: date, last: date, now: datetime, window: timedelta) -> int:
    """Recompute the rows of the days first..last (inclusive) in one transaction."""
    start, end = _day_start(first), _day_start(last + timedelta(days=1))
    by_key = _send_figures(start=start, end=end)
    for key, figures in _departure_figures(start=start, end=end, window=window).items():
        by_key.setdefault(key, {}).update(figures)
    rows = [
        StepDailyResults(step_id=step_id, day=day, summarised_at=now, **{f: figures.get(f, 0) for f in FIGURES})
        for (step_id, day), figures in by_key.items()
    ]
    with transaction.atomic():
        # Upsert (not delete-then-insert): two summaries running at once both finish.
        StepDailyResults.objects.bulk_create(
            rows, batch_size=1000, update_conflicts=True, unique_fields=["step", "day"],
            update_fields=[*FIGURES, "summarised_at"],
        )
        # Rows of these days this run did not write (a step with no sends left, after an erasure).
        StepDailyResults.objects.filter(day__gte=first, day__lte=last).exclude(summarised_at=now).delete()
    return len(rows)


def results_summarise(*, now: datetime | None = None, rebuild: bool = False) -> SummaryOutcome:
    """Bring StepDailyResults up to date: the recent days, or every day since the first email when
    the table is empty or `rebuild` is asked for (in chunks of CHUNK_DAYS days, one transaction each)."""
    now = now or timezone.now()
    window = timedelta(days=settings.NURTURE_RESULTS_LEAVE_WINDOW_DAYS)
    today = now.astimezone(dt_timezone.utc).date()
    if rebuild or not StepDailyResults.objects.exists():
        first_sent = Delivery.objects.filter(status=Delivery.Status.SENT,
                                             sent_at__isnull=False).aggregate(first=Min("sent_at"))["first"]
        if first_sent is None:
            return SummaryOutcome(None, None, 0)
        first = first_sent.astimezone(dt_timezone.utc).date()
    else:
        first = today - window - timedelta(days=RECOMPUTE_MARGIN_DAYS)
    written = 0
    chunk_first = first
    while chunk_first <= today:
        chunk_last = min(today, chunk_first + timedelta(days=CHUNK_DAYS - 1))
        written += _summarise_days(first=chunk_first, last=chunk_last, now=now, window=window)
        chunk_first = chunk_last + timedelta(days=1)
    return SummaryOutcome(first, today, written)
