"""A calm preference centre: it says whose choices these are and where things stand, asks before
stopping everything, and the unsubscribe page offers a break first without making stopping harder."""
from __future__ import annotations

import pytest

from nurture import tokens
from nurture.models import CarerHandoff, ConsentRecord
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana():
    return active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]), first_name="Ana")


def prefs(subscriber) -> str:
    return f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"


def unsubscribe_url(subscriber) -> str:
    return f"/unsubscribe/{tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)}/"


def test_the_page_says_which_address_and_where_things_stand(client, ana):
    CarerHandoff.objects.create(subscriber=ana, carer_email="tom@example.org", status="active", mode="as_well")
    html = client.get(prefs(ana)).content.decode()
    assert "These choices are for <strong>ana@example.org</strong>." in html
    assert "Your emails are on." in html and "Your emails also go to tom@example.org." in html


def test_a_paused_reader_sees_until_when_at_the_top(client, ana):
    client.post(prefs(ana), {"action": "pause", "weeks": "4"})
    html = client.get(prefs(ana)).content.decode()
    standing = html[html.index('id="standing"'):html.index("</div>", html.index('id="standing"'))]
    assert "Your emails are paused until" in standing


def test_stop_all_emails_asks_first_and_offers_a_break_or_fewer_emails(client, ana):
    page = client.post(prefs(ana), {"action": "unsubscribe"})
    html = page.content.decode()
    assert page.status_code == 200 and "Stop all emails?" in html
    assert 'href="./#pause"' in html and 'href="./#id_cadence_0"' in html
    ana.refresh_from_db()
    assert ana.status == "active"
    page = client.post(prefs(ana), {"action": "unsubscribe_confirmed"})
    assert "You will not receive any more emails" in page.content.decode()
    ana.refresh_from_db()
    assert ana.status == "unsubscribed"


def test_each_result_shows_in_its_own_section_with_focus(client, ana):
    html = client.post(prefs(ana), {"action": "pause", "weeks": "2"}).content.decode()
    pause_section = html[html.index('<h2 id="pause">'):html.index('<h2 id="stop">')]
    assert 'role="status" tabindex="-1" autofocus' in pause_section
    assert html.count("autofocus") == 1
    assert 'action="#pause"' in html and 'action="#carer"' in html


def test_the_unsubscribe_page_offers_a_break_and_one_press_still_stops(client, ana):
    html = client.get(unsubscribe_url(ana)).content.decode()
    assert "Or take a break instead" in html and 'name="weeks"' in html
    page = client.post(unsubscribe_url(ana), {"action": "pause", "weeks": "13"})
    assert page.status_code == 200 and "Your emails are paused" in page.content.decode()
    assert "/preferences/" not in page.content.decode()  # a never-expiring link leads to no preference page
    ana.refresh_from_db()
    assert ana.status == "paused"
    assert ConsentRecord.objects.get(subscriber=ana, kind="pause").source == "unsubscribe_link"
    # The stop button (and a mail client's one-click POST, which names no action) still stops.
    client.post(unsubscribe_url(ana), {"List-Unsubscribe": "One-Click"})
    ana.refresh_from_db()
    assert ana.status == "unsubscribed"


def test_a_pause_from_the_unsubscribe_page_needs_a_length(client, ana):
    page = client.post(unsubscribe_url(ana), {"action": "pause"})
    assert page.status_code == 400 and "Choose how long you would like a break." in page.content.decode()
    ana.refresh_from_db()
    assert ana.status == "active"
