"""The results page at /admin/nurture/results/: what each step of a series achieved over a period,
where people leave, sends per week, and the same step across stages and languages.

    ?series=<id>&period=7d|30d|90d|quarter   or   &start=YYYY-MM-DD&end=YYYY-MM-DD,   &format=csv

Needs the permission nurture.view_results (roles "Content editors" and "Auditors"); staff without
it get a 403 page naming it. Counts only, from the daily summary (nurture/selectors/results.py): no address,
name or stage of a person; counts of 1 to 4 people shown as "<5", one more cell of their row,
column or total as "x", and every other count rounded to 5 (nurture/small_cells.py; PeriodFigures in
nurture/selectors/results.py). The CSV holds every table of the page (counts only, no rates) with the period and when it
was generated.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from content.models import Article, Stage
from nurture import small_cells
from nurture.selectors import results
from nurture.admin import charts
from nurture.admin.base import staff_view
from nurture.models import Series

PERMISSION = "nurture.view_results"
TEMPLATE = "admin/nurture/results/index.html"


@dataclass(frozen=True)
class Column:
    name: str
    in_csv: bool = True  # rates are shown on the page only: the CSV holds counts


@dataclass
class Table:
    id: str
    caption: str
    columns: list[Column]
    rows: list[tuple[list, bool]] = field(default_factory=list)  # (cells, highlighted)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _series_label(series: Series) -> str:
    return f"{Stage(series.stage).label}, {series.language}"


def _step_table(data: results.PeriodFigures, series: Series, *, window: int) -> Table:
    names = {
        "unsubscribed": f"Unsubscribed within {window} days",
        "paused": f"Paused within {window} days",
    }
    table = Table(
        "results-steps", "Per step",
        [Column("Step"), Column("Subject"), *(Column(names.get(f, f.capitalize())) for f in data.figures),
         Column("Leave rate", in_csv=False)],
    )
    highlighted = data.highlighted(series.pk)
    for step in data.steps.get(series.pk, []):
        cells = [data.step_shown(step, f) for f in data.figures]
        table.rows.append(([f"#{step.position + 1}", step.subject, *cells, _percent(data.leave_rate(step))],
                           step is highlighted))
    return table


def _weekly_table(data: results.PeriodFigures) -> tuple[Table, list[str]]:
    layer_names = [f"{Stage(stage).label}, {language}" for stage, language in data.weekly.rows]
    table = Table("results-weekly", "Emails sent per week, by stage and language",
                  [Column("Week from"), *map(Column, layer_names)])
    for i, monday in enumerate(data.weekly.weeks):
        table.rows.append(([monday.isoformat(), *(data.week_shown(key, i) for key in data.weekly.rows)], False))
    return table, layer_names


def _comparison_table(data: results.PeriodFigures) -> Table:
    columns = [Column("Step")]
    for series in data.series:
        label = _series_label(series)
        columns += [Column(f"{label}: sent"), Column(f"{label}: unsubscribed"),
                    Column(f"{label}: leave rate", in_csv=False)]
    table = Table("results-compare", "The same step across stages and languages", columns)
    for position in data.positions:
        cells: list = [f"#{position + 1}"]
        for series in data.series:
            step = data.at_position(series.pk, position)
            if step is None:
                cells += [0, 0, "—"]
            else:
                cells += [data.step_shown(step, "sent"), data.step_shown(step, "unsubscribed"),
                          _percent(data.leave_rate(step))]
        table.rows.append((cells, False))
    return table


def _drawable(value) -> int | None:
    """A count as a chart may draw it: left out when the table hides it."""
    return value if isinstance(value, int) else None


def _feedback_tables(*, series: Series, period: results.Period, comments_url: str) -> list[Table]:
    """"Was this email helpful?" per step and per article, and the impact question: counts under the
    small-cell rule, the share answering yes only where both counts may be shown."""
    per_step, per_article = results.series_feedback(series_id=series.pk, period=period)
    columns = [Column("Yes"), Column("No"), Column("Share yes")]
    step_table = Table("results-feedback-steps", "Was this email helpful? Per step", [Column("Step"), *columns])
    for row in per_step:
        step_table.rows.append(([row.label, small_cells.count_shown(row.yes), small_cells.count_shown(row.no),
                                 _percent(row.share)], False))
    article_table = Table("results-feedback-articles", "Was this email helpful? Per article", [
        Column("Article"), *columns, Column("Comments", in_csv=False)])
    for row in per_article:
        link = format_html('<a href="{}?article={}&amp;{}">read</a>', comments_url, row.key,
                           period_query(period)) if row.comments else "—"
        article_table.rows.append(([row.label, small_cells.count_shown(row.yes), small_cells.count_shown(row.no),
                                    _percent(row.share), link], False))
    impact = results.series_impact(series_id=series.pk, period=period)
    impact_table = Table("results-impact",
                         "Do you feel more able to decide about a second opinion? (1 = not at all, 5 = very much)",
                         [Column("Answers"), *(Column(str(n)) for n in results.IMPACT_SCALE), Column("All")])
    # The answers and their total are one line a reader could add up: protected together.
    counts = {**{n: impact[n] for n in results.IMPACT_SCALE}, "all": sum(impact.values())}
    shown = small_cells.counts_shown(counts, [list(counts)])
    impact_table.rows.append((["People", *(shown[n] for n in results.IMPACT_SCALE), shown["all"]], False))
    return [step_table, article_table, impact_table]


def period_query(period: results.Period) -> str:
    return f"start={period.start.isoformat()}&end={period.end.isoformat()}"


def _csv_safe(value) -> str:
    text = str(value)
    # A cell a spreadsheet would run as a formula (a subject starting with "=") is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and text != "—" else text


def _csv_response(
    *, tables: list[Table], period: results.Period, series: Series, generated_at, window: int, bereaved: int,
) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"results-{series.stage}-{series.language}-{period.start}-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(["Results", series.name, _series_label(series)])
    writer.writerow(["Period", period.start.isoformat(), period.end.isoformat()])
    writer.writerow(["Generated at", generated_at.isoformat(timespec="seconds")])
    writer.writerow(["Bereavements reported (all series; not counted as leaving)", small_cells.count_shown(bereaved)])
    writer.writerow(["Note",
        f"Counts only; 1 to {small_cells.MIN_CELL - 1} people shown as {small_cells.SUPPRESSED}, and one more "
                             f"cell of their row, column or total as {small_cells.HIDDEN}; "
                             + f"counts rounded to the nearest {small_cells.ROUND_TO}; "
                             + f"unsubscribed and paused count within {window} days after the step"])
    for table in tables:
        keep = [i for i, column in enumerate(table.columns) if column.in_csv]
        writer.writerow([])
        writer.writerow([table.caption])
        writer.writerow([table.columns[i].name for i in keep])
        for cells, _highlighted in table.rows:
            writer.writerow([_csv_safe(cells[i]) for i in keep])
    return response


def _busiest(data: results.PeriodFigures, series_list: list[Series]) -> Series:
    """The series that sent the most emails in the period (the first when none sent any). Only which
    series it is shows, never its count: a sum may hold cells the tables hide."""
    return max(series_list, key=lambda series: sum(s.figures["sent"] for s in data.steps.get(series.pk, [])))


def _bad_request(request, message: str, *, series_list, status: int = 400) -> HttpResponse:
    context = {**admin.site.each_context(request), "title": "Results", "error": message, "series_list": series_list,
               "periods": [*results.PERIODS, "quarter"]}
    return render(request, TEMPLATE, context, status=status)


@staff_view(PERMISSION)  # sign-in with the second factor first, then the named permission (403 naming it)
def results_page(request):
    now = timezone.now()
    series_list = list(Series.objects.order_by("stage", "language"))
    try:
        period = results.resolve_period(
            period=request.GET.get("period"), start=request.GET.get("start"), end=request.GET.get("end"),
            today=now.astimezone(dt_timezone.utc).date(),  # the summary's days are UTC days
        )
    except results.PeriodError as error:
        return _bad_request(request, f"{error.field}: {error.message}", series_list=series_list)
    if not series_list:  # a fresh install: nothing wrong with the request
        return _bad_request(request, "There is no series yet: run manage.py load_content.", series_list=[], status=200)
    raw_series = (request.GET.get("series") or "").strip()
    if raw_series and not any(str(s.pk) == raw_series for s in series_list):
        return _bad_request(request, "series: choose one of the series listed.", series_list=series_list)
    fmt = request.GET.get("format", "html")
    if fmt not in ("html", "csv"):
        return _bad_request(request, "format: must be csv, or left out for the page.", series_list=series_list)

    window = results.leave_window_days()
    tracking = (("opened", settings.NURTURE_TRACK_OPENS), ("clicked", settings.NURTURE_TRACK_CLICKS))
    tracked = [figure for figure, on in tracking if on]
    data = results.period_figures(
        period=period, figures=("sent", "delivered", "bounced", "complained", "unsubscribed", "paused", *tracked),
    )
    # Without a choice, the page opens on the series with the most sending in the period.
    series = next((s for s in series_list if str(s.pk) == raw_series), None) or _busiest(data, series_list)
    steps = data.steps.get(series.pk, [])
    step_table = _step_table(data, series, window=window)
    weekly_table, layer_names = _weekly_table(data)
    compare_table = _comparison_table(data)
    feedback_tables = _feedback_tables(series=series, period=period, comments_url=reverse("nurture_feedback_comments"))
    tables = [step_table, weekly_table, compare_table, *feedback_tables]
    bereaved = results.bereavements_reported(period=period)
    if fmt == "csv":
        return _csv_response(tables=tables, period=period, series=series, generated_at=now, window=window,
                             bereaved=bereaved)

    highlighted = data.highlighted(series.pk)

    def bar(step, value, shown):
        return charts.Bar(f"#{step.position + 1} {step.subject}", value, shown, step is highlighted)

    funnel = charts.bar_chart(
        chart_id="chart-funnel", title=f"Funnel: {series.name}",
        desc=f"How many people each step reached from {period.label}; the table beside it has the numbers.",
        bars=[bar(s, _drawable(data.step_shown(s, "sent")), str(data.step_shown(s, "sent"))) for s in steps],
    )
    leave = charts.bar_chart(
        chart_id="chart-leave", title=f"Leave rate per step: {series.name}",
        desc=f"Share of people sent each step who unsubscribed within {window} days; the highest is marked.",
        bars=[bar(s, data.leave_rate(s), _percent(data.leave_rate(s))) for s in steps],
    )
    weekly_chart = charts.stacked_columns(
        chart_id="chart-weekly", title="Emails sent per week, by stage and language",
        desc=(
            f"Weeks from {period.label}, each column split by stage and language; the table beside it has the numbers."
        ),
        columns=[w.strftime("%d %b") for w in data.weekly.weeks],
        layers=[(name, [_drawable(data.week_shown(key, i)) for i in range(len(data.weekly.weeks))])
                for name, key in zip(layer_names, data.weekly.rows)],
    )
    query = request.GET.copy()
    query["format"] = "csv"
    context = {
        **admin.site.each_context(request),
        "title": "Results",
        "is_nav_sidebar_enabled": False,  # the tables need the width
        "series": series,
        "series_list": series_list,
        "period": period,
        "periods": [*results.PERIODS, "quarter"],
        "now": now,
        "summarised_at": results.last_summarised_at(),
        "window": window,
        "tracked": tracked,
        "pauses_recorded": results.pauses_recorded(),
        "highlighted": highlighted,
        "highlighted_rate": _percent(data.leave_rate(highlighted)) if highlighted else "",
        "step_table": step_table,
        "weekly_table": weekly_table,
        "compare_table": compare_table,
        "feedback_tables": feedback_tables,
        "funnel_chart": funnel,
        "leave_chart": leave,
        "weekly_chart": weekly_chart,
        "csv_query": query.urlencode(),
        "min_cell": small_cells.MIN_CELL,
        "hidden_mark": small_cells.HIDDEN,
        "rounded_to": small_cells.ROUND_TO,
        "bereavements": small_cells.count_shown(bereaved),
    }
    return render(request, TEMPLATE, context)


COMMENTS_PERMISSION = "nurture.view_feedback_comments"


@staff_view(COMMENTS_PERMISSION)
def feedback_comments_page(request):
    """Readers' comments on one article's emails over a period: the day, the yes/no and the text,
    escaped; nothing that leads to the person (no delivery, subscriber, address or stage)."""
    now = timezone.now()
    try:
        period = results.resolve_period(
            period=request.GET.get("period"), start=request.GET.get("start"), end=request.GET.get("end"),
            today=now.astimezone(dt_timezone.utc).date(),
        )
    except results.PeriodError as error:
        return render(request, COMMENTS_TEMPLATE, {**admin.site.each_context(request), "title": "Readers' comments",
                                                   "error": f"{error.field}: {error.message}"}, status=400)
    raw = (request.GET.get("article") or "").strip()
    article = Article.objects.filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 12 else None
    if article is None:
        return render(request, COMMENTS_TEMPLATE, {
            **admin.site.each_context(request), "title": "Readers' comments",
            "error": "article: choose an article from the results page.",
        }, status=400)
    context = {
        **admin.site.each_context(request), "title": f"Readers' comments: {article.title} ({article.language})",
        "article": article, "period": period,
        "comments": results.article_comments(article_id=article.pk, period=period),
        "retention_days": settings.NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS,
    }
    return render(request, COMMENTS_TEMPLATE, context)


COMMENTS_TEMPLATE = "admin/nurture/results/comments.html"
