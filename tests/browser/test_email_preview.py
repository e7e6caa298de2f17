"""The staff preview in a real browser: the email shows in its frame, and "send a test to me" works."""
from __future__ import annotations

import pytest
from django.core import mail

from nurture.models import Delivery, Step
from tests.helpers.browser import logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff_page(browser, live_server, client, django_user_model, settings):
    settings.SITE_URL = live_server.url
    from tests.helpers.staff import CONTENT_EDITORS, staff_user

    staff = staff_user("editor", CONTENT_EDITORS, email="editor@example.org")  # previews, test sends to themselves
    page = logged_in_page(browser=browser, live_server=live_server, client=client, user=staff, viewport={"width": 1200, "height": 1000})
    yield page
    page.context.close()


def test_preview_shows_the_email_and_test_send_reaches_the_staff_member(staff_page, live_server, tmp_path):
    step = Step.objects.get(series__stage="in_treatment", series__language="es", position=2)  # two articles: an h2 each
    staff_page.goto(f"{live_server.url}/admin/nurture/email-preview/step/{step.pk}/")
    frame = staff_page.frame_locator("iframe")
    frame.locator("h1").wait_for(timeout=10_000)
    assert frame.locator("h1").inner_text() == step.subject
    assert frame.locator("h2").count() == step.articles.count()
    assert "Revise esta información con su médico" in frame.locator("body").inner_text()
    staff_page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)

    staff_page.get_by_role("button", name="Send a test to me").click()
    staff_page.get_by_text("Test email sent to editor@example.org").wait_for(timeout=10_000)
    assert [m.subject for m in mail.outbox] == ["[TEST] " + step.subject]
    assert Delivery.objects.count() == 0


def test_journey_page_lists_the_series(staff_page, live_server):
    staff_page.goto(f"{live_server.url}/admin/nurture/email-preview/")
    staff_page.select_option("#journey-stage", "in_remission")
    staff_page.select_option("#journey-language", "en")
    staff_page.get_by_role("button", name="Show the journey").click()
    rows = staff_page.locator("#journey-emails tbody tr")  # not the sidebar's lists of models
    rows.first.wait_for(timeout=10_000)
    assert rows.count() == Step.objects.filter(series__stage="in_remission", series__language="en").count()
