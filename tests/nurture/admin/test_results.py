"""The results page (/admin/nurture/results/): figures against hand-built deliveries, events and
departures, period edges, small-cell suppression, the CSV, no personal data, the permission, bad
input. The summary is filled by the real service (services/results.py), as the beat task does."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from nurture import small_cells
from nurture.selectors import results
from nurture.models import ConsentRecord, Delivery, ProviderEvent, StepDailyResults, Subscriber
from nurture.services.results import results_summarise
from nurture.services.schedule import periodic_tasks_ensure
from tests.helpers.scheduler import series
from tests.helpers.staff import verified_login

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=dt_timezone.utc)
URL = "/admin/nurture/results/"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.NURTURE_RESULTS_LEAVE_WINDOW_DAYS = 7


def people(the_series, n: int, *, prefix: str) -> list[Subscriber]:
    return Subscriber.objects.bulk_create(
        Subscriber(email=f"{prefix}{i}@private.example", first_name=f"Secretname{prefix}{i}", stage=the_series.stage,
                   language=the_series.language, status="active", series=the_series, confirmed_at=NOW - timedelta(days=60))
        for i in range(n)
    )


def send(subscribers, step, at: datetime) -> list[Delivery]:
    return Delivery.objects.bulk_create(
        Delivery(subscriber=s, step=step, status="sent", sent_at=at, provider_message_id=f"pm-{s.pk}-{step.pk}") for s in subscribers
    )


def events(deliveries, event_type: str) -> None:
    ProviderEvent.objects.bulk_create(
        ProviderEvent(provider="test", event_id=f"{event_type}-{d.pk}", event_type=event_type, delivery=d, timestamp=NOW)
        for d in deliveries
    )


def unsubscribe(subscribers, at: datetime) -> None:
    Subscriber.objects.filter(pk__in=[s.pk for s in subscribers]).update(status="unsubscribed", unsubscribed_at=at)


@pytest.fixture
def world():
    """English in-treatment series (3 steps) and a Spanish one; a cohort of 12 people in English."""
    en = series("in_treatment", [(0, ["a"]), (3, ["b"]), (3, ["c"])])
    es = series("in_treatment", [(0, ["a"]), (3, ["b"])], language="es")
    steps = list(en.steps.order_by("position"))
    cohort = people(en, 12, prefix="en")
    first = send(cohort, steps[0], NOW - timedelta(days=3))
    events(first[:6], "delivered")
    events(first[6:7], "delivered")  # 7 delivered in all
    events(first[:2], "bounced")  # 2: shown as "<5"
    events(first[:5], "opened")
    second = send(cohort[:10], steps[1], NOW - timedelta(days=2))
    events(second, "delivered")
    # Five leave a day after the second email: they count against #2, not #1 (their last email).
    unsubscribe(cohort[:5], NOW - timedelta(days=1))
    spanish = people(es, 6, prefix="es")
    send(spanish, es.steps.get(position=0), NOW - timedelta(days=1))
    return {"en": en, "es": es, "steps": steps, "cohort": cohort, "spanish": spanish}


def summarise():
    return results_summarise(now=NOW, rebuild=True)


def last_days(n: int) -> results.Period:
    return results.resolve_period(period=f"{n}d", start=None, end=None, today=NOW.date())


# --- figures ------------------------------------------------------------------------------------


def test_step_figures_match_the_hand_built_deliveries(world):
    summarise()
    rows = results.series_results(series_id=world["en"].pk, period=last_days(7))
    assert [r.position for r in rows] == [0, 1, 2]
    first, second, third = rows
    assert first.figures == {"sent": 12, "delivered": 7, "bounced": 2, "complained": 0, "opened": 5, "clicked": 0,
                             "unsubscribed": 0, "paused": 0}
    assert (second.figures["sent"], second.figures["delivered"], second.figures["unsubscribed"]) == (10, 10, 5)
    assert third.figures["sent"] == 0
    assert second.leave_rate == 0.5 and first.leave_rate == 0.0


def test_pauses_within_the_window_count_against_the_last_email_and_are_not_leaving(world):
    # Five of the cohort pause (through their pause link) a day after the first email, before the
    # second: they count as paused after #1, and a pause is never an unsubscribe.
    pausing = people(world["en"], 6, prefix="pause")
    send(pausing, world["steps"][0], NOW - timedelta(days=3))
    for person in pausing[:5]:
        ConsentRecord.objects.create(subscriber=person, kind=ConsentRecord.Kind.PAUSE, source="pause_link",
                                     consent_text="Paused", language="en")
    ConsentRecord.objects.filter(subscriber__in=pausing[:5]).update(given_at=NOW - timedelta(days=2))
    summarise()
    first = results.series_results(series_id=world["en"].pk, period=last_days(7))[0]
    assert (first.figures["paused"], first.figures["unsubscribed"], first.figures["sent"]) == (5, 0, 18)
    assert results.pauses_recorded()


def test_an_unmatched_provider_event_counts_nowhere(world):
    third = send(people(world["en"], 6, prefix="forged"), world["steps"][2], NOW - timedelta(days=1))
    events(third, "delivered")
    ProviderEvent.objects.filter(delivery__in=third[:5]).update(matched=False)  # e.g. forged: another address
    summarise()
    assert results.series_results(series_id=world["en"].pk, period=last_days(7))[2].figures["delivered"] == 1


def test_a_departure_outside_the_window_counts_nowhere_and_the_window_is_a_setting(world, settings):
    late = people(world["en"], 5, prefix="late")
    send(late, world["steps"][0], NOW - timedelta(days=20))
    unsubscribe(late, NOW - timedelta(days=11))  # 9 days after their only email
    summarise()
    period = results.resolve_period(period=None, start="2026-10-31", end="2026-11-01", today=NOW.date())
    assert results.series_results(series_id=world["en"].pk, period=period)[0].figures["unsubscribed"] == 0
    settings.NURTURE_RESULTS_LEAVE_WINDOW_DAYS = 10
    summarise()
    assert results.series_results(series_id=world["en"].pk, period=period)[0].figures["unsubscribed"] == 5


def test_period_edges_are_whole_utc_days_both_included(world):
    en_step = world["steps"][2]
    edge = people(world["en"], 3, prefix="edge")
    start = datetime(2026, 11, 1, tzinfo=dt_timezone.utc)
    send(edge[:1], en_step, start)  # the first instant: in
    send(edge[1:2], en_step, start - timedelta(microseconds=1))  # the day before: out
    send(edge[2:], en_step, datetime(2026, 11, 7, 23, 59, 59, tzinfo=dt_timezone.utc))  # the last day: in
    summarise()
    period = results.resolve_period(period=None, start="2026-11-01", end="2026-11-07", today=NOW.date())
    assert results.series_results(series_id=world["en"].pk, period=period)[2].figures["sent"] == 2
    day_before = results.resolve_period(period=None, start="2026-10-31", end="2026-10-31", today=NOW.date())
    assert results.series_results(series_id=world["en"].pk, period=day_before)[2].figures["sent"] == 1


def test_named_periods():
    today = date(2026, 11, 20)
    assert results.resolve_period(period="7d", start=None, end=None, today=today).start == date(2026, 11, 14)
    assert results.resolve_period(period="90d", start=None, end=None, today=today).days == 90
    quarter = results.resolve_period(period="quarter", start=None, end=None, today=today)
    assert (quarter.start, quarter.end) == (date(2026, 10, 1), today)
    assert results.resolve_period(period=None, start=None, end=None, today=today).key == "30d"
    for bad in ({"period": "1y"}, {"start": "2026-13-01", "end": "2026-12-01"}, {"start": "2026-11-02", "end": "2026-11-01"},
                {"start": "2026-11-01"}, {"start": "2020-01-01", "end": "2026-01-01"}):
        with pytest.raises(results.PeriodError):
            results.resolve_period(**{"period": None, "start": None, "end": None, **bad}, today=today)


def test_small_cells_are_suppressed_and_rates_of_small_counts_hidden():
    assert small_cells.cells_to_hide({"a": 0, "b": 1, "c": 4, "d": 5, "e": 12}, []) == ({"b", "c"}, set())
    assert [small_cells.round_count(n) for n in (5, 7, 8, 12, 13, 22)] == [5, 5, 10, 10, 15, 20]
    assert small_cells.rate(2, 100) is None and small_cells.rate(5, 4) is None and small_cells.rate(5, 10) == 0.5
    assert small_cells.rate(0, 10) == 0.0


def test_a_line_with_one_small_cell_hides_one_more_and_hidden_cells_pair_up():
    counts = {"a1": 2, "b1": 9, "c1": 30, "a2": 0, "b2": 8, "c2": 40, "a3": 3, "b3": 7, "c3": 50}
    rows = [["a1", "b1", "c1"], ["a2", "b2", "c2"], ["a3", "b3", "c3"]]
    columns = [list(column) for column in zip(*rows)]
    primary, secondary = small_cells.cells_to_hide(counts, rows + columns)
    # Row 1 hides its smallest other cell, b1; column b then hides b3, whose row already hides a3.
    assert primary == {"a1", "a3"} and secondary == {"b1", "b3"}
    for line in rows + columns:
        assert sum(key in primary | secondary for key in line) != 1
    # A cost steers the choice away from the figures the page needs most.
    assert small_cells.cells_to_hide(counts, rows + columns, cost=lambda key: key[0] == "b")[1] == {"c1", "c3"}


def test_no_step_is_highlighted_while_departures_are_too_few_to_show(world):
    Subscriber.objects.filter(pk__in=[s.pk for s in world["cohort"][1:5]]).update(unsubscribed_at=None, status="active")
    summarise()
    rows = results.series_results(series_id=world["en"].pk, period=last_days(7))
    assert rows[1].figures["unsubscribed"] == 1
    data = results.period_figures(period=last_days(7), figures=("sent", "unsubscribed"))
    assert data.highlighted(world["en"].pk) is None


def test_weekly_sends_and_the_comparison(world):
    summarise()
    period = last_days(30)
    weekly = results.weekly_sends(period=period)
    assert weekly.weeks[0] == date(2026, 10, 19) and weekly.weeks[-1] == date(2026, 11, 16)
    assert weekly.rows[("in_treatment", "en")][-1] == 22 and weekly.rows[("in_treatment", "es")][-1] == 6
    data = results.period_figures(period=period, figures=("sent", "unsubscribed"))
    assert data.positions == [0, 1, 2]
    es_first, en_second = data.at_position(world["es"].pk, 0), data.at_position(world["en"].pk, 1)
    assert (es_first.figures["sent"], es_first.figures["unsubscribed"]) == (6, 0)
    assert (en_second.figures["sent"], en_second.figures["unsubscribed"]) == (10, 5)
    assert data.leave_rate(en_second) == 0.5 and data.highlighted(world["en"].pk) == en_second


def test_the_summary_keeps_old_days_after_erasure_and_recomputes_recent_ones(world):
    summarise()
    old = people(world["en"], 6, prefix="old")
    send(old, world["steps"][0], NOW - timedelta(days=40))
    summarise()
    assert StepDailyResults.objects.get(step=world["steps"][0], day=(NOW - timedelta(days=40)).date()).sent == 6
    Subscriber.objects.filter(pk__in=[s.pk for s in old]).delete()  # erased (deliveries go with them)
    world["cohort"][9].delete()
    results_summarise(now=NOW)  # the hourly run: recent days only
    assert StepDailyResults.objects.get(step=world["steps"][0], day=(NOW - timedelta(days=40)).date()).sent == 6
    assert StepDailyResults.objects.get(step=world["steps"][1], day=(NOW - timedelta(days=2)).date()).sent == 9
    results_summarise(now=NOW)  # idempotent
    assert StepDailyResults.objects.filter(step=world["steps"][1]).count() == 1


def test_the_summary_task_is_on_the_schedule():
    periodic_tasks_ensure()
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.get(name="Summarise results").task == "nurture.results_summarise"


# --- the page -----------------------------------------------------------------------------------


@pytest.fixture
def auditor(django_user_model):
    user = django_user_model.objects.create_user("auditor", "auditor@staff.example", "pw-long-enough", is_staff=True)
    user.groups.add(Group.objects.get(name="Auditors"))
    return user


def page(client, user, **params):
    verified_login(client, user)
    return client.get(URL, params)


def test_the_roles_that_see_aggregates_have_the_permission():
    for name in ("Content editors", "Auditors"):
        assert Group.objects.get(name=name).permissions.filter(codename="view_results", content_type__app_label="nurture").exists()


def test_staff_without_the_permission_get_a_403_naming_it(client, django_user_model, world):
    clerk = django_user_model.objects.create_user("clerk", "clerk@staff.example", "pw-long-enough", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    response = page(client, clerk)
    assert response.status_code == 403
    assert "nurture.view_results" in response.content.decode()


def test_a_staff_session_without_its_second_factor_is_sent_to_the_login(client, auditor, settings):
    settings.DEBUG = False
    client.force_login(auditor)  # password only: no verified device in the session
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_non_staff_are_sent_to_the_login(client, django_user_model):
    person = django_user_model.objects.create_user("someone", "someone@example.org", "pw-long-enough")
    response = page(client, person)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_page_shows_the_figures_charts_and_highlight(client, auditor, world, settings, monkeypatch):
    summarise()
    monkeypatch.setattr("nurture.admin.results.timezone.now", lambda: NOW)
    ProviderEvent.objects.filter(event_type="bounced").delete()  # no small cell: every figure shows
    summarise()
    response = page(client, auditor, series=world["en"].pk, period="7d")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="img"') == 3 and "<title id=\"chart-funnel-title\">" in html and "<desc" in html
    assert 'id="results-highest"' in html and "#2" in html and "50.0%" in html
    assert '<tr class="is-highlighted"><th scope="row">#2' in html
    assert "&lt;5</td>" not in html and "<td>x</td>" not in html
    events(Delivery.objects.filter(step=world["steps"][0]).order_by("pk")[:2], "bounced")
    summarise()
    html = page(client, auditor, series=world["en"].pk, period="7d").content.decode()
    assert "<td>&lt;5</td>" in html and "<td>x</td>" in html  # the two bounces, and what would give them away
    assert "Opened" not in html and "Clicked" not in html  # tracking off
    assert "<script" not in html.split('id="content"')[-1] and ' style="' not in html.split('id="content"')[-1]
    settings.NURTURE_TRACK_OPENS = True
    assert "Opened" in page(client, auditor, series=world["en"].pk, period="7d").content.decode()


def test_no_personal_data_in_the_page_or_the_csv(client, auditor, world):
    summarise()
    for fmt in ("html", "csv"):
        body = page(client, auditor, series=world["en"].pk, period="30d", format=fmt).content.decode()
        assert "@private.example" not in body and "Secretname" not in body
        assert "/admin/nurture/subscriber/" not in body  # no link to a person either


def test_the_csv_holds_every_table_with_the_period_and_generation_time(client, auditor, world, monkeypatch):
    ProviderEvent.objects.filter(event_type="bounced").delete()  # no small cell: the rounding alone
    summarise()
    monkeypatch.setattr("nurture.admin.results.timezone.now", lambda: NOW)
    response = page(client, auditor, series=world["en"].pk, start="2026-11-14", end="2026-11-20", format="csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="results-in_treatment-en-2026-11-14-2026-11-20.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ["Period", "2026-11-14", "2026-11-20"] in rows
    assert ["Generated at", "2026-11-20T12:00:00+00:00"] in rows
    header = rows.index(["Per step"]) + 1
    assert rows[header] == ["Step", "Subject", "Sent", "Delivered", "Bounced", "Complained", "Unsubscribed within 7 days",
                            "Paused within 7 days"]
    # A custom period: every count rounded to the nearest 5 (12 -> 10, 7 -> 5, 22 -> 20, 6 -> 5).
    assert rows[header + 1] == ["#1", "Step 1", "10", "5", "0", "0", "0", "0"]
    assert rows[header + 2] == ["#2", "Step 2", "10", "10", "0", "0", "5", "0"]
    weekly = rows.index(["Emails sent per week, by stage and language"]) + 1
    assert rows[weekly] == ["Week from", "In treatment, en", "In treatment, es"]
    assert rows[weekly + 1:weekly + 3] == [["2026-11-09", "0", "0"], ["2026-11-16", "20", "5"]]
    compare = rows.index(["The same step across stages and languages"]) + 1
    assert rows[compare + 2][:3] == ["#2", "10", "5"]
    assert any("rounded to the nearest 5" in cell for row in rows for cell in row)
    assert not any("leave rate" in cell.lower() or cell.endswith("%") for row in rows for cell in row)  # counts only


def test_a_formula_like_subject_is_quoted_in_the_csv(client, auditor, world):
    world["steps"][0].__class__.objects.filter(pk=world["steps"][0].pk).update(subject="=HYPERLINK(1)")
    summarise()
    body = page(client, auditor, series=world["en"].pk, format="csv").content.decode()
    assert "'=HYPERLINK(1)" in body


@pytest.mark.parametrize(
    "params, field",
    [({"period": "1y"}, "period"), ({"start": "yesterday", "end": "2026-11-01"}, "start"),
     ({"start": "2026-11-02", "end": "2026-11-01"}, "end"), ({"series": "999999"}, "series"),
     ({"series": "x'"}, "series"), ({"format": "xml"}, "format")],
)
def test_bad_parameters_get_a_400_naming_the_field(client, auditor, world, params, field):
    response = page(client, auditor, **params)
    assert response.status_code == 400
    assert f"{field}:" in response.content.decode()


def test_without_a_choice_the_page_opens_on_the_series_that_sent_most_in_the_period(client, auditor, world, monkeypatch):
    quiet = series("in_remission", [(0, ["q"])])  # listed first (stages in order), and sent nothing
    summarise()
    monkeypatch.setattr("nurture.admin.results.timezone.now", lambda: NOW)
    html = page(client, auditor, period="7d").content.decode()
    assert f'<option value="{world["en"].pk}" selected>' in html and f'<option value="{quiet.pk}" selected>' not in html
    # The Spanish series sent more than the English one in the last day alone: it opens on that one.
    html = page(client, auditor, start=(NOW - timedelta(days=1)).date().isoformat(), end=NOW.date().isoformat()).content.decode()
    assert f'<option value="{world["es"].pk}" selected>' in html
    # Nothing sent in the period: the first series, as before.
    html = page(client, auditor, start="2020-01-01", end="2020-01-31").content.decode()
    assert f'<option value="{quiet.pk}" selected>' in html


def test_the_page_before_any_summary_says_so(client, auditor, world):
    html = page(client, auditor).content.decode()
    assert "not yet" in html and "Nothing in this period" not in html.split('id="results-steps"')[0]


def test_reverse_name():
    assert reverse("nurture_results") == URL


def test_the_command_summarises(world):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("summarise_results", "--rebuild", stdout=out)
    assert "rows (step x day)" in out.getvalue()
    assert StepDailyResults.objects.filter(sent__gt=0).exists()


def test_the_beat_task_runs_the_summary(world):
    from nurture.tasks import results_summarise_task

    outcome = results_summarise_task.delay().get()
    assert outcome["rows"] > 0 and StepDailyResults.objects.filter(step=world["steps"][1], unsubscribed=5).exists()


def test_the_page_makes_the_same_number_of_queries_whatever_the_volume(client, auditor, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    summarise()
    verified_login(client, auditor)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(URL, {"series": world["en"].pk, "period": "90d"}).status_code == 200
        return len(captured)

    before = queries()
    more = people(world["es"], 40, prefix="more")
    send(more, world["es"].steps.get(position=0), NOW - timedelta(days=50))
    send(more[:10], world["es"].steps.get(position=1), NOW - timedelta(days=5))
    summarise()
    assert queries() == before


def test_the_page_with_no_series_yet_says_so(client, auditor):
    response = page(client, auditor)
    assert response.status_code == 200 and "There is no series yet" in response.content.decode()


def test_charts_are_accessible_escape_their_text_and_leave_out_small_counts():
    from nurture.admin import charts

    svg = charts.bar_chart(chart_id="c", title="T <b>", desc="D", bars=[
        charts.Bar("#1 <script>alert(1)</script>", 10, "10"), charts.Bar("#2 few", None, "<5"), charts.Bar("#3", 20, "20", True),
    ])
    assert svg.startswith('<svg class="nurture-chart" id="c" role="img"') and 'aria-labelledby="c-title c-desc"' in svg
    assert "<title id=\"c-title\">T &lt;b&gt;</title>" in svg and "<script>" not in svg and "&lt;5" in svg
    assert svg.count("<rect") == 2 and svg.count('class="chart-bar is-highlighted"') == 1 and "style=" not in svg
    stacked = charts.stacked_columns(chart_id="w", title="W", desc="D", columns=["a", "b"], layers=[("x", [3, None]), ("y", [0, 4])])
    assert stacked.count('class="chart-layer layer-0"') == 2 and stacked.count('class="chart-layer layer-1"') == 2  # 1 bar + 1 legend each
