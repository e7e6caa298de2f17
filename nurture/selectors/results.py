"""Reads for the results page (/admin/nurture/results/): what each step achieved over a period.

The page's reads use the daily summary (StepDailyResults, filled by services/results.py) or readers'
answers (Feedback, without the delivery), never the deliveries themselves, so each read is a few
indexed rows whatever the volume. Counts only: no person's address, name or stage. Small cells stay small
(nurture/small_cells.py): the page's tables are protected together, computed over every series at
once so no page or table undoes another's; and every shown count is rounded, so two overlapping
periods cannot be subtracted (custom ranges overlap at will; the named periods nest, 7 days inside 30,
and move with the day). Reads only: this module never writes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db.models import Count, F, Max, QuerySet, Sum

from content.models import Article
from nurture.models import Bereavement, ConsentRecord, Feedback, Series, Step, StepDailyResults, Subscriber
from nurture.small_cells import HIDDEN, MIN_CELL, SUPPRESSED, cells_to_hide, count_shown, rate, round_count

PERIODS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_PERIOD = "30d"
MAX_CUSTOM_DAYS = 731
FIRST_DAY = date(2000, 1, 1)  # no email of ours is older: an earlier date is a typing mistake
DEPARTURE_KINDS = ("unsubscribe", "pause")
# Figures counted from provider events, each named after its (anymail) event type.
EVENT_FIGURES = ("delivered", "bounced", "complained", "opened", "clicked")
FIGURES = ("sent", *EVENT_FIGURES, "unsubscribed", "paused")


# --- where departures are recorded: the one place to change ------------------------------------


def departure_times(*, kind: str) -> QuerySet | None:
    """When people left ("unsubscribe") or paused ("pause"): `who` (subscriber id) and `at` per row,
    or None. Unsubscribes: Subscriber.unsubscribed_at (also older leavers); pauses: the consent
    record each pause writes (kind "pause"), read through its (kind, given_at) index."""
    if kind == "unsubscribe":
        return Subscriber.objects.filter(unsubscribed_at__isnull=False).annotate(who=F("pk"), at=F("unsubscribed_at"))
    if kind == "pause":
        return ConsentRecord.objects.filter(kind=ConsentRecord.Kind.PAUSE).annotate(who=F("subscriber_id"),
                                                                                    at=F("given_at"))
    return None


def pauses_recorded() -> bool:
    return departure_times(kind="pause") is not None


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
        if first < FIRST_DAY:
            raise PeriodError("start", f"start must be on or after {FIRST_DAY.isoformat()}.")
        if first > today:
            raise PeriodError("start", "start must be today or earlier: nothing has been sent after today.")
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
    series_id: int
    position: int
    subject: str
    figures: dict[str, int]  # exact counts: never shown as they are (see PeriodFigures)

    @property
    def leave_rate(self) -> float | None:
        return rate(self.figures["unsubscribed"], self.figures["sent"])


def steps_by_series(*, period: Period, series_id: int | None = None) -> dict[int, list[StepResult]]:
    """{series id: its steps in order, with their exact figures over the period} (zeros for a step
    that sent nothing), for one series or every series: two queries."""
    in_period = _in_period(period) if series_id is None else _in_period(period).filter(step__series_id=series_id)
    totals = {row["step_id"]: row
              for row in in_period.order_by().values("step_id").annotate(**{f: Sum(f) for f in FIGURES})}
    steps = Step.objects.order_by("series_id", "position").only("id", "series_id", "position", "subject")
    result: dict[int, list[StepResult]] = defaultdict(list)
    for step in steps if series_id is None else steps.filter(series_id=series_id):
        figures = {f: (totals.get(step.pk) or {}).get(f) or 0 for f in FIGURES}
        result[step.series_id].append(StepResult(step.pk, step.series_id, step.position, step.subject, figures))
    return dict(result)


def series_results(*, series_id: int, period: Period) -> list[StepResult]:
    """Each step of one series, in order, with its exact figures over the period."""
    return steps_by_series(period=period, series_id=series_id).get(series_id, [])


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
        _in_period(period).order_by().values("day", "step__series__stage",
                                             "step__series__language").annotate(n=Sum("sent"))
    )
    for row in by_day:
        key = (row["step__series__stage"], row["step__series__language"])
        result.rows.setdefault(key, [0] * len(weeks))[index[week_start(row["day"])]] += row["n"]
    return result


# --- what the page may show: every table of one period, protected together ---------------------


@dataclass
class PeriodFigures:
    """Every count the results page and its CSV show for one period, across every series (so the
    same cells are hidden whichever series a page is about), and what each count shows as."""

    period: Period
    figures: tuple[str, ...]  # the per-step figures on the page
    series: list[Series]
    steps: dict[int, list[StepResult]]  # series id -> steps in order
    weekly: WeeklySends
    primary: set = field(default_factory=set)  # shown as "<5"
    secondary: set = field(default_factory=set)  # shown as "x"

    def shown(self, key, count: int) -> int | str:
        if key in self.primary:
            return SUPPRESSED
        if key in self.secondary:
            return HIDDEN
        return round_count(count)

    def step_shown(self, step: StepResult, figure: str) -> int | str:
        return self.shown(("step", step.step_id, figure), step.figures[figure])

    def week_shown(self, key: tuple[str, str], index: int) -> int | str:
        return self.shown(("week", key, index), self.weekly.rows[key][index])

    def leave_rate(self, step: StepResult) -> float | None:
        """Unsubscribed / sent from the counts as shown (rounded), so a rate
        never gives back a count the table hides; None when either is hidden or nothing was sent."""
        part, whole = self.step_shown(step, "unsubscribed"), self.step_shown(step, "sent")
        if not (isinstance(part, int) and isinstance(whole, int)) or whole < MIN_CELL:
            return None
        return part / whole

    def highlighted(self, series_id: int) -> StepResult | None:
        """The step with the highest leave rate: none while no step's unsubscribe count is shown as 5 or more."""
        rated = [
            s for s in self.steps.get(series_id, [])
            if self.leave_rate(s) is not None and self.step_shown(s, "unsubscribed") >= MIN_CELL
        ]
        return max(rated, key=lambda s: (self.leave_rate(s), -s.position)) if rated else None

    @property
    def positions(self) -> list[int]:
        return sorted({s.position for steps in self.steps.values() for s in steps})

    def at_position(self, series_id: int, position: int) -> StepResult | None:
        return next((s for s in self.steps.get(series_id, []) if s.position == position), None)


def period_figures(*, period: Period, figures: tuple[str, ...]) -> PeriodFigures:
    """The page's figures for `period` with primary and secondary suppression over every line a reader
    could add up: each step's row, each figure's column within a series, the same step position
    across series (the comparison table), each week's row and column, and each stage and language's
    weeks against its steps' sends (the same total two ways)."""
    result = PeriodFigures(
        period=period, figures=figures, series=list(Series.objects.order_by("stage", "language")),
        steps=steps_by_series(period=period), weekly=weekly_sends(period=period),
    )
    counts: dict = {}
    lines: list[list] = []
    by_position: dict[int, list] = defaultdict(list)
    for steps in result.steps.values():
        for step in steps:
            row = [("step", step.step_id, f) for f in figures]
            counts.update((key, step.figures[key[2]]) for key in row)
            lines.append(row)
            by_position[step.position] += [("step", step.step_id, "sent"), ("step", step.step_id, "unsubscribed")]
        lines += [[("step", step.step_id, f) for step in steps] for f in figures]
    lines += by_position.values()
    for key, values in result.weekly.rows.items():
        weeks = [("week", key, i) for i in range(len(values))]
        counts.update(zip(weeks, values))
        sends = [("step", step.step_id, "sent") for series in result.series if (series.stage, series.language) == key
                 for step in result.steps.get(series.pk, [])]
        lines += [weeks, weeks + sends]
    lines += [[("week", key, i) for key in result.weekly.rows] for i in range(len(result.weekly.weeks))]
    result.primary, result.secondary = cells_to_hide(counts, lines, cost=_hiding_cost)
    return result


# Which cells the page can best do without when one more must be hidden: the provider's figures first,
# then pauses, departures (the leave rate) and last the sends (the funnel); a week's count costs least.
_FIGURE_COST = {"delivered": 0, "bounced": 0, "complained": 0, "opened": 0, "clicked": 0, "paused": 1,
                "unsubscribed": 2, "sent": 3}


def _hiding_cost(key) -> int:
    return _FIGURE_COST.get(key[2], 0) if key[0] == "step" else 0


def bereavements_reported(*, period: Period) -> int:
    """People whose death was reported in the period (UTC days), across every series. Counted apart:
    a bereavement is never an unsubscribe, so it is in no "unsubscribed" figure and no leave rate.
    Reports go with the person at the retention purge, so older periods count fewer."""
    return Bereavement.objects.filter(
        reported_at__date__gte=period.start, reported_at__date__lte=period.end,
    ).count()


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
        if SUPPRESSED in (count_shown(self.yes), count_shown(self.no)):
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
    return [(at.astimezone(dt_timezone.utc).date(), "yes" if value == 1 else "no", comment) for at, value,
            comment in rows]
