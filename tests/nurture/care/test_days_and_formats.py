"""Days and hours that suit them (quiet weekdays, a part of the send window, in their zone, across DST),
and the two email formats (plain text only; larger text), through the rule, the planner's service,
the preference centre and the message builder."""
from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from nurture import rules, tokens
from nurture.emails.messages import build_step_email
from nurture.models import ConsentRecord, Subscriber
from nurture.services import subscribers as services
from tests.helpers.email_html import read_html
from tests.helpers.scheduler import active_subscriber, series

UTC = dt_timezone.utc
NY = zoneinfo.ZoneInfo("America/New_York")


def window(instant, **kw):
    return rules.next_send_time(last_sent_at=None, delay_days=0, cadence="as_planned", now=instant, day_seconds=86400,
                                min_days_between=2, window_start_hour=9, window_end_hour=17, **kw)


def test_a_quiet_day_moves_the_email_to_the_next_free_day_at_the_window_opening():
    friday_noon_ny = datetime(2026, 3, 6, 12, 0, tzinfo=NY)
    at = window(friday_noon_ny, time_zone="America/New_York", quiet_days="4,5,6")  # Fri, Sat, Sun
    assert at.astimezone(NY) == datetime(2026, 3, 9, 9, 0, tzinfo=NY)  # Monday 09:00 local


def test_quiet_days_and_morning_across_the_spring_forward_change():
    # 8 March 2026: New York moves from UTC-5 to UTC-4. Saturday evening, Sunday is a quiet day,
    # mornings only: Monday 09:00 local, which is 13:00 UTC (not 14:00 as before the change).
    saturday_evening = datetime(2026, 3, 7, 18, 0, tzinfo=NY)
    at = window(saturday_evening, time_zone="America/New_York", quiet_days="6", time_of_day="morning")
    assert at.astimezone(NY) == datetime(2026, 3, 9, 9, 0, tzinfo=NY)
    assert at.astimezone(UTC).hour == 13


def test_afternoon_across_the_fall_back_change_keeps_the_local_hour():
    before = datetime(2026, 10, 31, 16, 30, tzinfo=NY)  # Saturday; 1 November the clocks go back
    at = window(before + timedelta(hours=1), time_zone="America/New_York", time_of_day="afternoon")
    assert at.astimezone(NY).hour == 12 and at.astimezone(NY).date().isoformat() == "2026-11-01"
    assert at.astimezone(UTC).hour == 17  # UTC-5 after the change


def test_day_parts_are_cut_to_the_window_and_only_overlapping_ones_are_offered():
    assert rules.day_part_hours("morning", start_hour=9, end_hour=17) == (9, 12)
    assert rules.day_part_hours("evening", start_hour=9, end_hour=17) == (9, 17)  # not offered: the whole window
    assert rules.offered_day_parts(start_hour=9, end_hour=17) == ["morning", "afternoon"]
    assert rules.offered_day_parts(start_hour=8, end_hour=20) == ["morning", "afternoon", "evening"]
    assert rules.parse_quiet_days("0,1,2,3,4,5,6") == frozenset()  # never silence everything
    assert rules.parse_quiet_days("5,x,9,6") == {5, 6}


@pytest.mark.django_db
def test_the_journey_preview_follows_the_chosen_days_and_hours(settings):
    from nurture.selectors.series import series_journey

    settings.NURTURE_DAY_SECONDS = 86400
    settings.NURTURE_SEND_WINDOW_START_HOUR, settings.NURTURE_SEND_WINDOW_END_HOUR = 9, 17
    the_series = series("in_treatment", [(0, ["j1"]), (3, ["j2"]), (3, ["j3"]), (3, ["j4"])])
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    journey = series_journey(series_id=the_series.pk, start=start, time_zone="America/New_York",
                                       quiet_days="5,6", time_of_day="morning")
    assert len(journey) == 4
    for email in journey:
        local = email.send_at.astimezone(NY)
        assert local.weekday() < 5 and 9 <= local.hour < 12


# --- the service and the preference centre ---------------------------------------------------------------


@pytest.fixture
def ana():
    return active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"]), (3, ["a2"])]))


@pytest.mark.django_db
def test_choices_are_saved_recorded_and_re_planned(ana):
    later = ana.next_send_at = datetime(2030, 1, 1, tzinfo=UTC)
    Subscriber.objects.filter(pk=ana.pk).update(next_send_at=later)
    services.subscriber_set_delivery_preferences(subscriber_id=ana.pk, quiet_days=[6, 5], time_of_day="morning",
                                                 plain_text=True, larger_text=False)
    ana.refresh_from_db()
    assert (ana.quiet_days, ana.time_of_day, ana.plain_text) == ("5,6", "morning", True)
    assert ana.next_send_at < later  # re-planned under the new hours
    assert ConsentRecord.objects.filter(subscriber=ana, kind="delivery_preferences").count() == 1
    services.subscriber_set_delivery_preferences(subscriber_id=ana.pk, quiet_days=[5, 6], time_of_day="morning",
                                                 plain_text=True, larger_text=False)
    assert ConsentRecord.objects.filter(subscriber=ana, kind="delivery_preferences").count() == 1  # nothing changed


@pytest.mark.django_db
@pytest.mark.parametrize("days, part, field", [([0, 1, 2, 3, 4, 5, 6], "", "quiet_days"), ([], "evening", "time_of_day")])
def test_bad_choices_change_nothing(ana, settings, days, part, field):
    settings.NURTURE_SEND_WINDOW_START_HOUR, settings.NURTURE_SEND_WINDOW_END_HOUR = 9, 17
    with pytest.raises(services.InputError) as error:
        services.subscriber_set_delivery_preferences(subscriber_id=ana.pk, quiet_days=days, time_of_day=part,
                                                     plain_text=False, larger_text=False)
    assert error.value.field == field
    assert Subscriber.objects.get(pk=ana.pk).quiet_days == "" and not ConsentRecord.objects.exists()


@pytest.mark.django_db
def test_preference_centre_form_saves_and_a_bad_choice_gets_the_fields_error_in_spanish(client, settings):
    settings.NURTURE_SEND_WINDOW_START_HOUR, settings.NURTURE_SEND_WINDOW_END_HOUR = 9, 17
    sofia = active_subscriber("sofia@example.org", series("in_treatment", [(0, ["s1"])], language="es"))
    url = f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=sofia.pk)}/"
    page = client.get(url).content.decode()
    assert "Días en los que prefiere no recibir nuestros correos" in page and 'value="evening"' not in page
    ok = client.post(url, {"action": "timing", "quiet_days": ["5", "6"], "time_of_day": "afternoon", "larger_text": "on"})
    assert ok.status_code == 200
    sofia.refresh_from_db()
    assert (sofia.quiet_days, sofia.time_of_day, sofia.larger_text, sofia.plain_text) == ("5,6", "afternoon", True, False)
    bad = client.post(url, {"action": "timing", "quiet_days": [str(d) for d in range(7)]})
    assert bad.status_code == 400 and "Deje al menos un día libre" in bad.content.decode()
    assert client.post(url, {"action": "timing", "time_of_day": "evening"}).status_code == 400
    assert Subscriber.objects.get(pk=sofia.pk).quiet_days == "5,6"


# --- the formats -----------------------------------------------------------------------------------------


def links(text: str) -> set[str]:
    return set(re.findall(r"https://\S+?/(?:unsubscribe|preferences|pause|email)/[^/\s)]+/", text))


@pytest.mark.django_db
def test_plain_text_is_one_text_part_with_the_same_links(ana):
    step = ana.series.steps.get(position=0)
    standard = build_step_email(step=step, subscriber=ana, delivery_id=1)
    ana.plain_text = True
    plain = build_step_email(step=step, subscriber=ana, delivery_id=1)
    assert plain.alternatives == [] and plain.message().get_content_type() == "text/plain"
    assert links(plain.body) and {re.sub(r"/[^/]+/$", "/", u) for u in links(plain.body)} == {
        re.sub(r"/[^/]+/$", "/", u) for u in links(standard.body)}
    assert plain.extra_headers["List-Unsubscribe"].startswith("<https://")


@pytest.mark.django_db
def test_larger_text_scales_every_font_size_and_keeps_the_links(ana):
    step = ana.series.steps.get(position=0)
    standard = build_step_email(step=step, subscriber=ana).alternatives[0][0]
    ana.larger_text = True
    larger = build_step_email(step=step, subscriber=ana).alternatives[0][0]
    sizes = lambda html: [int(s) for s in re.findall(r"font-size:\s*(\d+)px", html)]  # noqa: E731
    assert sizes(larger) and min(sizes(larger)) >= 17 and max(sizes(larger)) > max(sizes(standard))
    assert len(re.findall(r'href="', larger)) == len(re.findall(r'href="', standard))
    assert read_html(larger)  # still well-formed for the layout checks
