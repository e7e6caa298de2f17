"""Reads for the results page (/admin/nurture/results/): what each step achieved over a period.

Everything here reads the daily summary (StepDailyResults, filled by services/results.py) or readers'
answers (Feedback, without the delivery), never the deliveries themselves, so each read is a few indexed rows whatever the volume. Counts only: no
person's address, name or stage; any count of 1 to 4 people is shown as "<5" (MIN_CELL) so nobody
can be singled out. Reads only: this module never writes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db.models import Count, F, Max, QuerySet, Sum

from content.models import Article
from nurture.models import ConsentRecord, Feedback, Series, Step, StepDailyResults, Subscriber

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


def leave_window_days() -> int:
    return settings.NURTURE_RESULTS_LEAVE_WINDOW_DAYS


# --- readers' feedback ("Was this email helpful?") and the impact question ----------------------


def _answered_in(period: Period) -> QuerySet[Feedback]:
    """Answers given in the period (UTC days, like the summary's)."""
    start = datetime.combine(period.start, time.min, tzinfo=dt_timezone.utc)
    end = datetime.combine(period.end + timedelta(days=1), time.min, tzinfo=dt_timezone.utc)
    return Feedback.objects.filter(answered_at__gte=start, answered_at__lt=end)


@dataclass
class FeedbackCounts:
    label: str
    yes: int = 0
    no: int = 0
    key: int | None = None  # the step or article id
    comments: int = 0

    @property
    def share(self) -> float | None:
        """The share answering yes; hidden when either count is shown as "<5" (it would give that count away)."""
        if SUPPRESSED in (cell(self.yes), cell(self.no)):
            return None
        return rate(self.yes, self.yes + self.no)


def series_feedback(*, series_id: int, period: Period) -> tuple[list[FeedbackCounts], list[FeedbackCounts]]:
    """("Was this helpful?" per step in order, per article the emails carried): yes and no answers given
    in the period to the series' emails. An article counts each answer to an email that carried it."""
    steps = list(Step.objects.filter(series_id=series_id).order_by("position").only("id", "position", "subject"))
    per_step = {s.pk: FeedbackCounts(f"#{s.position + 1} {s.subject}", key=s.pk) for s in steps}
    per_article: dict[int, FeedbackCounts] = {}
    answers = _answered_in(period).filter(step__series_id=series_id, question=Feedback.Question.HELPFUL)
    for step_id, article_ids, value, comment in answers.values_list("step_id", "article_ids", "value", "comment"):
        rows = [per_step[step_id]] if step_id in per_step else []
        for article_id in article_ids or []:
            rows.append(per_article.setdefault(article_id, FeedbackCounts("", key=article_id)))
        for row in rows:
            row.yes, row.no = row.yes + (value == 1), row.no + (value == 0)
            row.comments += bool(comment)
    titles = dict(Article.objects.filter(pk__in=per_article).values_list("pk", "title"))
    for article_id, row in per_article.items():
        row.label = titles.get(article_id, f"article #{article_id} (deleted)")
    return list(per_step.values()), sorted(per_article.values(), key=lambda r: r.label)


IMPACT_SCALE = (1, 2, 3, 4, 5)


def series_impact(*, series_id: int, period: Period) -> dict[int, int]:
    """The impact question's answers in the period for the series: {1..5: count}."""
    counts = dict.fromkeys(IMPACT_SCALE, 0)
    answers = _answered_in(period).filter(step__series_id=series_id, question=Feedback.Question.IMPACT)
    for value, n in answers.order_by().values_list("value").annotate(n=Count("id")):
        if value in counts:
            counts[value] = n
    return counts


def article_comments(*, article_id: int, period: Period) -> list[tuple[date, str, str]]:
    """(day, "yes" | "no", comment) for the article's emails, newest first: the text and the day only,
    never who wrote it (no delivery, subscriber or address is read)."""
    rows = (
        _answered_in(period).filter(question=Feedback.Question.HELPFUL, article_ids__contains=[article_id])
        .exclude(comment="").order_by("-answered_at").values_list("answered_at", "value", "comment")
    )
    return [(at.astimezone(dt_timezone.utc).date(), "yes" if value == 1 else "no", comment) for at, value, comment in rows]
