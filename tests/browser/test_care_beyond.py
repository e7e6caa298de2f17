"""Care beyond the series in a real browser: "Tell us someone has died" (two steps) and the days-and-times
choices on a phone, and the Replies queue in the admin. Screenshots go to tests/artifacts/ (docs/img
keeps the ones docs/subscribers.md and docs/admin.md show)."""
from __future__ import annotations

import pytest
from django.utils import timezone

from nurture import tokens
from nurture.models import Delivery, Reply, Subscriber
from tests.browser.test_care import ARTIFACTS, fits, phone  # noqa: F401 (phone: the care pages' phone fixture)
from tests.helpers.browser import logged_in_page
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bereavement_two_steps_on_a_phone(phone, live_server):
    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    prefs = f"{live_server.url}/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)}/"
    phone.goto(prefs)
    phone.click("text=Tell us someone has died")
    phone.wait_for_selector("h1:has-text('Tell us someone has died')")
    assert fits(phone)
    phone.screenshot(path=str(ARTIFACTS / "bereavement-phone.png"), full_page=True)
    phone.click("button:has-text('Continue')")
    phone.wait_for_selector("h1:has-text('Stop all emails?')")
    assert Subscriber.objects.get(pk=ana.pk).status == "active"
    phone.click("button:has-text('Yes, stop all emails')")
    phone.wait_for_selector("h1:has-text('Thank you for telling us')")
    assert Subscriber.objects.get(pk=ana.pk).status == "deceased"


def test_days_and_times_on_a_phone(phone, live_server):
    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    phone.goto(f"{live_server.url}/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)}/#timing")
    phone.check("input[name=quiet_days][value='6']")
    phone.check("input[name=time_of_day][value='morning']")
    phone.check("input[name=larger_text]")
    phone.click("button[value=timing]")
    phone.wait_for_selector("#timing")
    assert fits(phone)
    phone.locator("#timing").scroll_into_view_if_needed()
    phone.screenshot(path=str(ARTIFACTS / "timing-phone.png"))
    ana.refresh_from_db()
    assert (ana.quiet_days, ana.time_of_day, ana.larger_text) == ("6", "morning", True)


def test_replies_queue_in_the_admin(browser, live_server, client):
    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    delivery = Delivery.objects.create(subscriber=ana, step=ana.series.steps.get(), status="sent", sent_at=timezone.now())
    Reply.objects.create(subscriber=ana, delivery=delivery, provider="postmark", state="waiting", subject="Re: Welcome",
                         text="Can my own doctor send my records to the second doctor?", paused_series=True)
    Reply.objects.create(provider="postmark", state="automatic", subject="Out of office")
    from django.contrib.auth.models import Permission

    user = staff_user("care.shots", "Subscriber care")
    user.user_permissions.add(Permission.objects.get(codename="handle_reply"))  # a flushed database: re-grant 0014's
    page = logged_in_page(browser=browser, live_server=live_server, client=client, user=user, viewport={"width": 1300, "height": 700})
    try:
        page.goto(f"{live_server.url}/admin/nurture/reply/")
        page.wait_for_selector("text=Re: Welcome")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "replies-desktop.png"))
    finally:
        page.context.close()
