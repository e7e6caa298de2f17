"""The staff side in a real browser: a stage change from the subscriber list through the
intermediate form, and the sending overview and "view as sent" pages as staff see them."""
from __future__ import annotations

import os

import pytest
from django.utils import timezone

from nurture.models import Delivery, Series, Subscriber
from tests.helpers.browser import logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set to a directory to keep the screenshots (they go to the test's tmp_path otherwise).
SHOTS = os.environ.get("NURTURE_ADMIN_SCREENSHOTS")


@pytest.fixture
def staff_page(browser, live_server, client, django_user_model, settings):
    settings.SITE_URL = live_server.url
    staff = django_user_model.objects.create_superuser("lead", "lead@example.org", "pw-long-enough")
    page = logged_in_page(browser=browser, live_server=live_server, client=client, user=staff, viewport={"width": 1300, "height": 1000})
    yield page
    page.context.close()


def _shot(page, tmp_path, name: str) -> None:
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), f"{name}.png"), full_page=True)


def test_staff_change_a_subscribers_stage_from_the_list(staff_page, live_server, tmp_path):
    treatment = Series.objects.get(stage="in_treatment", language="en")
    remission = Series.objects.get(stage="in_remission", language="en")
    now = timezone.now()
    reader = Subscriber.objects.create(
        email="reader@example.org", stage="in_treatment", language="en", status="active", series=treatment,
        next_step_position=3, next_send_at=now, confirmed_at=now,
    )
    Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=0), status="sent", sent_at=now)

    staff_page.goto(f"{live_server.url}/admin/nurture/subscriber/")
    staff_page.locator(f'input[name="_selected_action"][value="{reader.pk}"]').check()
    staff_page.select_option('select[name="action"]', "change_stage")
    staff_page.get_by_role("button", name="Go").click()
    staff_page.locator('select[name="stage"]').wait_for(timeout=10_000)
    staff_page.select_option('select[name="stage"]', "in_remission")
    _shot(staff_page, tmp_path, "change-stage-form")
    staff_page.get_by_role("button", name="Move to the start of that series").click()
    staff_page.get_by_text("Moved 1 subscriber to the start of the series").wait_for(timeout=10_000)

    reader.refresh_from_db()
    assert (reader.stage, reader.series_id, reader.next_step_position) == ("in_remission", remission.pk, 0)
    assert reader.deliveries.count() == 1  # history kept

    staff_page.goto(f"{live_server.url}/admin/nurture/subscriber/{reader.pk}/change/")
    assert "reader@example.org" in staff_page.content()
    assert staff_page.locator('input[name="email"]').count() == 0
    _shot(staff_page, tmp_path, "subscriber-page")


def test_overview_and_view_as_sent_render_for_staff(staff_page, live_server, tmp_path):
    treatment = Series.objects.get(stage="in_treatment", language="en")
    now = timezone.now()
    reader = Subscriber.objects.create(
        email="reader@example.org", stage="in_treatment", language="en", status="active", series=treatment, confirmed_at=now,
    )
    step = treatment.steps.get(position=2)  # two articles: an h2 each
    sent = Delivery.objects.create(
        subscriber=reader, step=step, status="sent", sent_at=now,
        article_versions={str(a.pk): a.version for a in step.articles.all()},
    )
    Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=3), status="failed", failed_at=now,
                            failure_reason="PostmarkAPIError (HTTP 422): inactive recipient")

    staff_page.goto(f"{live_server.url}/admin/")
    staff_page.get_by_role("link", name="Sending overview").click()
    staff_page.locator("#overview-series").wait_for(timeout=10_000)
    assert "inactive recipient" in staff_page.locator("#overview-reasons").inner_text()
    _shot(staff_page, tmp_path, "overview")

    staff_page.goto(f"{live_server.url}/admin/nurture/delivery/{sent.pk}/change/")
    staff_page.get_by_role("link", name="View as sent").first.click()
    frame = staff_page.frame_locator("iframe")
    frame.locator("h1").wait_for(timeout=10_000)
    assert frame.locator("h1").inner_text() == step.subject
    assert frame.locator("h2").count() == step.articles.count()
    _shot(staff_page, tmp_path, "view-as-sent")
