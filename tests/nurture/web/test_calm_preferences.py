"""A calm preference centre: it says whose choices these are and where things stand, asks before
stopping everything, and the unsubscribe page offers a break first without making stopping harder."""
from __future__ import annotations

import re

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


# --- no dead ends ------------------------------------------------------------------------------------


def test_a_replaced_link_says_so_and_offers_what_works(client, ana, settings):
    settings.NURTURE_ORG_HELPLINE = "0800 123 456"
    old = prefs(ana)
    client.post(old, {"action": "new_links"})
    page = client.get(old)
    html = page.content.decode()
    assert page.status_code == 400 and "This link has been replaced" in html
    assert "copied incompletely" not in html and "STOP" not in html
    assert "0800 123 456" in html and settings.NURTURE_ORG_WEBSITE in html


def test_a_bad_link_never_offers_a_helpline_that_is_not_set(client, settings):
    settings.NURTURE_ORG_HELPLINE = "[helpline not set]"
    html = client.get("/preferences/not-a-token/").content.decode()
    assert "This link does not work" in html and "not set]" not in html and "Or call us" not in html


def test_the_carer_can_say_no_thanks_in_one_press(client, ana):
    handoff = CarerHandoff.objects.create(subscriber=ana, carer_email="tom@example.org")
    token = tokens.make_token(purpose=tokens.CARER_CONFIRM, subscriber_id=ana.pk, extra=str(handoff.pk))
    html = client.get(f"/carer/confirm/{token}/").content.decode()
    assert "Ana asked us" in html and "ana@example.org" not in html  # first name only
    no_thanks = re.search(r'<form method="post" action="([^"]+)" class="no-thanks">', html).group(1)
    page = client.post(no_thanks)
    assert "You will not receive these emails" in page.content.decode()
    handoff.refresh_from_db()
    assert handoff.status == "stopped" and handoff.stopped_by == "carer"
