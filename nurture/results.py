"""Reads for the results page (/admin/nurture/results/): what each step achieved over a period.

Everything here reads the daily summary (StepDailyResults, filled by services/results.py), never the
deliveries themselves, so each read is a few indexed rows whatever the volume. Counts only: no
person's address, name or stage; any count of 1 to 4 people is shown as "<5" (MIN_CELL) so nobody
can be singled out. Reads only: this module never writes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import F, Max, QuerySet, Sum

from nurture.models import Bereavement, ConsentRecord, Series, Step, StepDailyResults, Subscriber

MIN_CELL = 5  # counts of 1..MIN_CELL-1 people are suppressed
SUPPRESSED = "<5"
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_PERIOD = "30d"
MAX_CUSTOM_DAYS = 731
DEPARTURE_KINDS = ("unsubscribe", "pause")
# Figures counted from provider events, each named after its (anymail) event type.
EVENT_FIGURES = ("delivered", "bounced", "complained", "opened", "clicked")
FIGURES = ("sent", *EVENT_FIGURES, "unsubscribed", "paused")


# --- where departures are recorded: the one place to change ------------------------------------


def departure_times(*, kind: str) -> QuerySet | None:
    """When people left ("unsubscribe") or paused ("pause"): a queryset with `who` (subscriber id)
    and `at` (when) for each, or None when nothing records it.

    Unsubscribes: Subscriber.unsubscribed_at (it also covers people who left before consent records
    had kinds). Pauses: the consent record each pause writes (kind "pause", through the pause link,
    the preference centre or staff), read through its (kind, given_at) index."""
    if kind == "unsubscribe":
        return Subscriber.objects.filter(unsubscribed_at__isnull=False).annotate(who=F("pk"), at=F("unsubscribed_at"))
    if kind == "pause":
        return ConsentRecord.objects.filter(kind=ConsentRecord.Kind.PAUSE).annotate(who=F("subscriber_id"), at=F("given_at"))
    return None


def pauses_recorded() -> bool:
    return departure_times(kind="pause") is not None


# --- small cells --------------------------------------------------------------------------------


def cell(count: int | None) -> int | str:
    """A count as shown and exported: 1..4 become "<5"; 0 stays 0 (it singles nobody out)."""
    if count is None:
        return "—"
    return SUPPRESSED if 0 < count < MIN_CELL else count


def drawable(count: int) -> int | None:
    """A count as a chart may draw it: None (left out) when it is shown as "<5"."""
    return None if cell(count) == SUPPRESSED else count


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when either count is too small to show (or nothing was sent)."""
    if whole < MIN_CELL or 0 < part < MIN_CELL:
        return None
    return part / whole


# --- the period ---------------------------------------------------------------------------------


class PeriodError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Period:
    key: str  # "7d", "30d", "90d", "quarter" or "custom"
    start: date  # first day, inclusive (UTC days)
    end: date  # last day, inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def _parse_day(field_name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise PeriodError(field_name, f"{field_name} must be a date written YYYY-MM-DD, not {raw[:40]!r}.") from None


def resolve_period(*, period: str | None, start: str | None, end: str | None, today: date) -> Period:
    """The days a page covers: the last 7/30/90 days (today included), the current quarter so far,
    or start..end (both included). Raises PeriodError naming the bad field."""
    if start or end:
        if not (start and end):
            raise PeriodError("start" if not start else "end", "Give both start and end (YYYY-MM-DD), or a period.")
        first, last = _parse_day("start", start), _parse_day("end", end)
        if first > last:
            raise PeriodError("end", "end must be on or after start.")
        if (last - first).days + 1 > MAX_CUSTOM_DAYS:
            raise PeriodError("end", f"A custom period covers at most {MAX_CUSTOM_DAYS} days.")
        return Period("custom", first, last)
    key = period or DEFAULT_PERIOD
    if key in PERIODS:
        return Period(key, today - timedelta(days=PERIODS[key] - 1), today)
    if key == "quarter":
        return Period(key, date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today)
    raise PeriodError("period", f"period must be one of {', '.join([*PERIODS, 'quarter'])}, not {key[:40]!r}.")


# --- the figures --------------------------------------------------------------------------------


def _in_period(period: Period) -> QuerySet[StepDailyResults]:
    return StepDailyResults.objects.filter(day__gte=period.start, day__lte=period.end)


def last_summarised_at() -> datetime | None:
    return StepDailyResults.objects.aggregate(at=Max("summarised_at"))["at"]


@dataclass
class StepResult:
    step_id: int
    position: int
    subject: str
    figures: dict[str, int]
    highlighted: bool = False

    @property
    def leave_rate(self) -> float | None:
        return rate(self.figures["unsubscribed"], self.figures["sent"])


def series_results(*, series_id: int, period: Period) -> list[StepResult]:
    """Each step of the series, in order, with its figures over the period (zeros for a step that
    sent nothing); the step with the highest leave rate is `highlighted` (none while every step's
    unsubscribe count is too small to show)."""
    totals = {
        row["step_id"]: row
        for row in _in_period(period)
        .filter(step__series_id=series_id)
        .order_by()
        .values("step_id")
        .annotate(**{f: Sum(f) for f in FIGURES})
    }
    results = [
        StepResult(step.pk, step.position, step.subject, {f: (totals.get(step.pk) or {}).get(f) or 0 for f in FIGURES})
        for step in Step.objects.filter(series_id=series_id).order_by("position").only("id", "position", "subject")
    ]
    rated = [r for r in results if r.leave_rate is not None and r.figures["unsubscribed"] >= MIN_CELL]
    if rated:
        max(rated, key=lambda r: (r.leave_rate, -r.position)).highlighted = True
    return results


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # Monday


@dataclass
class WeeklySends:
    weeks: list[date]  # Mondays
    # (stage, language) -> emails sent in each week, in `weeks` order
    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def weekly_sends(*, period: Period) -> WeeklySends:
    """Emails sent per week (weeks start on Monday; the first and last may be partial) by the
    stage and language of the series: one grouped query."""
    weeks = []
    monday = week_start(period.start)
    while monday <= period.end:
        weeks.append(monday)
        monday += timedelta(days=7)
    index = {w: i for i, w in enumerate(weeks)}
    result = WeeklySends(weeks=weeks)
    for series in Series.objects.order_by("stage", "language"):
        result.rows[(series.stage, series.language)] = [0] * len(weeks)
    by_day = (
        _in_period(period).order_by().values("day", "step__series__stage", "step__series__language").annotate(n=Sum("sent"))
    )
    for row in by_day:
        key = (row["step__series__stage"], row["step__series__language"])
        result.rows.setdefault(key, [0] * len(weeks))[index[week_start(row["day"])]] += row["n"]
    return result


@dataclass
class Comparison:
    series: list[Series]
    positions: list[int]
    # (position, series id) -> {"sent": n, "unsubscribed": n}
    cells: dict[tuple[int, int], dict[str, int]]

    def rate(self, position: int, series_id: int) -> float | None:
        figures = self.cells.get((position, series_id), {"sent": 0, "unsubscribed": 0})
        return rate(figures["unsubscribed"], figures["sent"])


def step_comparison(*, period: Period) -> Comparison:
    """The same step position across every stage and language, side by side: sent and unsubscribed."""
    series = list(Series.objects.order_by("stage", "language"))
    positions = sorted(set(Step.objects.values_list("position", flat=True)))
    cells: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: {"sent": 0, "unsubscribed": 0})
    grouped = (
        _in_period(period)
        .order_by()
        .values("step__position", "step__series_id")
        .annotate(sent=Sum("sent"), unsubscribed=Sum("unsubscribed"))
    )
    for row in grouped:
        cells[(row["step__position"], row["step__series_id"])] = {"sent": row["sent"], "unsubscribed": row["unsubscribed"]}
    return Comparison(series, positions, dict(cells))


def bereavements_reported(*, period: Period) -> int:
    """People whose death was reported in the period (UTC days), across every series. Counted apart:
    a bereavement is never an unsubscribe, so it is in no "unsubscribed" figure and no leave rate.
    Reports go with the person at the retention purge, so older periods count fewer."""
    return Bereavement.objects.filter(
        reported_at__date__gte=period.start, reported_at__date__lte=period.end,
    ).count()


def leave_window_days() -> int:
    return settings.NURTURE_RESULTS_LEAVE_WINDOW_DAYS
