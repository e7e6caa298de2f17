"""The public pages in a real browser: a person signs up on a phone-sized screen, confirms, and stops."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import mail

from nurture.models import Subscriber

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # tests/artifacts/ (git-ignored)
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="America/Chicago")
    page = context.new_page()
    yield page
    context.close()


def test_bad_input_shows_field_errors_in_the_page(page, live_server):
    page.goto(live_server.url + "/")
    page.fill("#id_email", "not an email")
    page.click("#main button[type=submit]")
    page.wait_for_selector(".errorsummary")
    page.wait_for_load_state()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signup-errors-phone.png"))  # docs/subscribers.md
    errors = page.locator(".errorlist").all_inner_texts()
    assert len(errors) >= 3  # email, stage and consent
    assert page.input_value("#id_email") == "not an email"  # what they typed is kept
    assert Subscriber.objects.count() == 0
    # The summary has focus, so a screen reader reads it first; its links take the reader to the field.
    assert page.evaluate("document.activeElement.id") == "errors"
    page.click("#errors a[href='#id_email']")
    assert page.evaluate("document.activeElement.id") == "id_email"
    described = page.get_attribute("#id_email", "aria-describedby")
    assert page.inner_text(f"#{described}") == "Enter an email address like name@example.org."


def test_sign_up_confirm_and_stop_in_the_browser(page, live_server):
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "en"
    page.fill("#id_email", "lee@example.org")
    page.fill("#id_first_name", "Lee")
    page.check("input[name=stage][value=recently_diagnosed]")
    page.select_option("#id_language", "en")
    page.check("#id_consent")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signup-phone.png"), full_page=True)
    page.click("#main button[type=submit]")
    page.wait_for_url(re.compile(r"/thanks/$"))
    assert "check your email" in page.inner_text("h1").lower()

    subscriber = Subscriber.objects.get()
    assert subscriber.time_zone == "America/Chicago"  # filled in from the browser
    confirm_url = re.search(r"(http://\S+/confirm/\S+/)", mail.outbox[0].body).group(1)
    page.goto(confirm_url)
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"
    page.click("#main button[type=submit]")
    page.wait_for_selector("text=you are signed up")
    subscriber.refresh_from_db()
    assert subscriber.status == "active"

    page.click("text=Manage your emails")
    page.wait_for_selector("text=Your email choices")
    page.click("button[value=unsubscribe]")
    page.wait_for_selector("text=Stop all emails?")  # asked first, with a break or fewer emails offered
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    page.click("button[value=unsubscribe_confirmed]")
    page.wait_for_selector("text=You will not receive any more emails")
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"


def test_pages_fit_a_phone_without_sideways_scrolling(page, live_server):
    page.goto(live_server.url + "/")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"]
    # every visible form control has a label a screen reader can announce
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
              .filter(el => !(el.labels && el.labels.length)).map(el => el.name)"""
    )
    assert unlabeled == []


def test_the_honeypot_is_out_of_sight_and_out_of_the_tab_order(page, live_server):
    """People never see or reach the `website` field; only a robot reading the HTML fills it in."""
    page.goto(live_server.url + "/")
    honeypot = page.locator("#id_website")
    assert honeypot.count() == 1
    box = honeypot.bounding_box()
    assert box is None or box["x"] + box["width"] <= 0  # drawn far off the left edge, if at all
    assert honeypot.get_attribute("tabindex") == "-1" and honeypot.get_attribute("autocomplete") == "off"
    page.focus("#id_email")
    reached = set()
    for _ in range(30):  # walk the whole tab order from the email field
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.id"))
    assert "id_website" not in reached and "id_consent" in reached


def test_the_preference_centre_shows_each_result_where_it_was_pressed_with_focus(page, live_server):
    from nurture import tokens
    from tests.helpers.scheduler import active_subscriber, series

    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]), first_name="Ana")
    page.goto(f"{live_server.url}/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)}/")
    assert "These choices are for ana@example.org." in page.inner_text("#standing")
    assert "Your emails are on." in page.inner_text("#standing")
    page.click("button[value=pause]")  # no length chosen: asked for one, nothing paused
    page.wait_for_selector("#errors")
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.id") == "errors"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "preferences-pause-error-phone.png"))  # docs/subscribers.md
    ana.refresh_from_db()
    assert ana.status == "active"
    page.check("input[name=weeks][value='4']")
    page.click("button[value=pause]")
    page.wait_for_selector("text=Your emails are paused until")
    page.wait_for_load_state()
    focused = page.evaluate("[document.activeElement.className, document.activeElement.innerText]")
    assert focused[0] == "note" and "paused until" in focused[1]
    # The page opens where the button was (the focused result is in view), not at the top.
    assert page.evaluate("(() => { const r = document.activeElement.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; })()")
    assert page.evaluate("scrollY") > 0
    page.screenshot(path=str(ARTIFACTS / "preferences-paused-phone.png"))  # docs/subscribers.md, where it was pressed
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "preferences-phone.png"))
    assert "Your emails are paused until" in page.inner_text("#standing")
    ana.refresh_from_db()
    assert ana.status == "paused" and ana.paused_until is not None


def test_no_page_asks_for_a_favicon_that_is_not_there(page, live_server):
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    page.goto(live_server.url + "/")
    page.wait_for_load_state("networkidle")
    assert missing == []
    icon = page.get_attribute("link[rel=icon]", "href")
    assert page.request.get(live_server.url + icon).status == 200
