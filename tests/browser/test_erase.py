"""'Delete my data' in a real browser on a phone-sized screen: ask, confirm, gone."""
from __future__ import annotations

from pathlib import Path

import pytest

from nurture import tokens
from nurture.models import Subscriber, Suppression
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # tests/artifacts/ (git-ignored)


def test_delete_my_data_in_the_browser(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["first-article"])]), first_name="Ana")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/")
        page.click("button[value=erase]")
        page.wait_for_selector("text=Delete your data?")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "erase-confirm-phone.png"), full_page=True)
        assert Subscriber.objects.filter(pk=subscriber.pk).exists()
        page.click("button[value=erase_confirmed]")
        page.wait_for_selector("text=Your data is deleted")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
    assert not Subscriber.objects.exists()
    assert Suppression.objects.filter(email="ana@example.org").exists()
