"""The care pages in a real browser on a phone-sized screen: the pause page, the carer flow (ask,
the carer's confirmation) and "Download my data". Screenshots go to tests/artifacts/ (docs/img keeps
the ones docs/subscribers.md shows)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nurture import tokens
from nurture.models import CarerHandoff, ConsentRecord, Subscriber
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # tests/artifacts/ (git-ignored)
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    try:
        yield context.new_page()
    finally:
        context.close()


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_pause_page_on_a_phone(phone, live_server):
    subscriber = active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"])]), first_name="Ana")
    phone.goto(f"{live_server.url}/pause/{tokens.make_token(purpose=tokens.PAUSE, subscriber_id=subscriber.pk)}/")
    phone.wait_for_selector("text=Pause these emails")
    assert fits(phone)
    phone.screenshot(path=str(ARTIFACTS / "pause-phone.png"), full_page=True)
    phone.check("input[name=weeks][value='4']")
    phone.click("button[type=submit]")
    phone.wait_for_selector("text=Your emails are paused")
    phone.screenshot(path=str(ARTIFACTS / "paused-phone.png"), full_page=True)
    subscriber.refresh_from_db()
    assert subscriber.status == "paused" and subscriber.paused_until is not None
    assert ConsentRecord.objects.get(subscriber=subscriber, kind="pause").source == "pause_link"


def test_carer_flow_on_a_phone(phone, live_server):
    subscriber = active_subscriber("rosa@example.org", series("in_treatment", [(0, ["a1"])]), first_name="Rosa")
    phone.goto(f"{live_server.url}/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/")
    phone.fill("input[name=carer_email]", "rosa@example.org")
    phone.check("input[name=mode][value=as_well]")
    phone.click("button[value=carer]")
    phone.wait_for_selector("text=This is your own address")  # the field's error; nothing changed
    assert not CarerHandoff.objects.exists()
    phone.fill("input[name=carer_email]", "tom@example.org")
    phone.check("input[name=mode][value=as_well]")
    phone.click("button[value=carer]")
    phone.wait_for_selector("text=We asked tom@example.org to confirm")
    assert fits(phone)
    phone.locator("#carer").scroll_into_view_if_needed()
    phone.screenshot(path=str(ARTIFACTS / "carer-asked-phone.png"))
    handoff = CarerHandoff.objects.get()
    assert handoff.status == "pending" and handoff.mode == "as_well"

    # The carer opens the link from their own inbox.
    token = tokens.make_token(purpose=tokens.CARER_CONFIRM, subscriber_id=subscriber.pk, extra=str(handoff.pk))
    phone.goto(f"{live_server.url}/carer/confirm/{token}/")
    phone.wait_for_selector("text=Receive these emails?")
    assert "Rosa asked us" in phone.content() and "rosa@example.org" not in phone.content()  # first name only
    assert fits(phone)
    phone.screenshot(path=str(ARTIFACTS / "carer-confirm-phone.png"), full_page=True)
    handoff.refresh_from_db()
    assert handoff.status == "pending"
    phone.click("button[type=submit]")
    phone.wait_for_selector("text=Thank you for helping")
    handoff.refresh_from_db()
    assert handoff.status == "active"


def test_download_my_data_on_a_phone(phone, live_server):
    subscriber = active_subscriber("lia@example.org", series("in_remission", [(0, ["a1"])]), first_name="Lia")
    phone.goto(f"{live_server.url}/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/")
    with phone.expect_download() as download_info:
        phone.click("a.button[download]")
    data = json.loads(Path(download_info.value.path()).read_text(encoding="utf-8"))
    assert data["profile"]["email"] == "lia@example.org" and data["profile"]["stage"] == "in_remission"
    phone.click("text=Read it as a web page")
    phone.wait_for_selector("text=Everything we hold about you")
    assert "lia@example.org" in phone.content()
    assert fits(phone)
    phone.screenshot(path=str(ARTIFACTS / "export-phone.png"), full_page=True)
    assert Subscriber.objects.get(pk=subscriber.pk).status == "active"  # reading changes nothing
