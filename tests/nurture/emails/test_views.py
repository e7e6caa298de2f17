"""View in browser, and the staff preview / journey / test-send tools."""
from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core import mail
from django.urls import reverse

from nurture import tokens
from nurture.emails.cache import render_cache
from nurture.emails.links import SAMPLE_TOKEN
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery, Step, Subscriber
from tests.helpers.staff import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(default_library_for_module):  # loaded once for the module (tests/conftest.py)
    render_cache.clear()


@pytest.fixture
def delivery(library):
    step = Step.objects.filter(series__language="es", series__stage="in_treatment", position=0).get()
    subscriber = Subscriber.objects.create(
        email="lee@example.org", first_name="Lee", stage="in_treatment", language="es", status="active", series=step.series
    )
    return Delivery.objects.create(subscriber=subscriber, step=step)


def _view_online_path(delivery) -> str:
    message = build_delivery_email(delivery)
    url = next(
        line.split(": ", 1)[1] for line in message.body.splitlines() if "/email/" in line
    )
    return url.removeprefix("https://guide.example.org")


def test_view_in_browser_link_opens_the_same_email(client, delivery):
    path = _view_online_path(delivery)
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    emailed = build_delivery_email(delivery).alternatives[0][0]
    # The same email, minus only the link to itself.
    assert "/email/" not in page and "Lee" in page
    assert page.count("<h2") == emailed.count("<h2") and 'lang="es"' in page
    assert response["Cache-Control"] == "private, no-store" and response["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3] + "abc",  # bad signature
        lambda t: "nonsense",
        lambda t: tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=1, extra="1"),  # wrong purpose
    ],
)
def test_tampered_view_link_gets_the_plain_bad_link_page(client, delivery, mangle):
    token = _view_online_path(delivery).split("/")[2]
    response = client.get(f"/email/{mangle(token)}/")
    assert response.status_code == 400 and b"This link does not work" in response.content


def test_view_link_for_someone_elses_delivery_is_refused(client, delivery):
    other = Subscriber.objects.create(email="other@example.org", stage="in_remission")
    token = tokens.make_token(purpose=tokens.VIEW_ONLINE, subscriber_id=other.pk, extra=str(delivery.pk))
    assert client.get(f"/email/{token}/").status_code == 400
    bad_extra = tokens.make_token(purpose=tokens.VIEW_ONLINE, subscriber_id=delivery.subscriber_id, extra="x1")
    assert client.get(f"/email/{bad_extra}/").status_code == 400
    missing = tokens.make_token(purpose=tokens.VIEW_ONLINE, subscriber_id=delivery.subscriber_id, extra="999999")
    assert client.get(f"/email/{missing}/").status_code == 400


# --- staff tools -----------------------------------------------------------------------------------

@pytest.fixture
def staff(django_user_model):
    """Subscriber care: previews, test sends, and previews as a real subscriber."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("editor", "editor@example.org", "pw-long-enough", is_staff=True)
    user.groups.add(Group.objects.get(name="Subscriber care"))
    return user


def test_staff_tools_need_a_staff_login(client, library):
    step = Step.objects.first()
    for url in (
        reverse("email_preview:index"),
        reverse("email_preview:step", args=[step.pk]),
        reverse("email_preview:step_html", args=[step.pk]),
        reverse("email_preview:journey"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    assert client.post(reverse("email_preview:step_test_send", args=[step.pk])).status_code == 302
    assert len(mail.outbox) == 0


def test_preview_as_sample_and_as_a_chosen_subscriber(client, staff, delivery):
    verified_login(client, staff)
    step = delivery.step
    sample = client.get(reverse("email_preview:step", args=[step.pk]))
    assert sample.status_code == 200 and "a sample subscriber" in sample.content.decode()
    html = client.get(reverse("email_preview:step_html", args=[step.pk]))
    assert html.status_code == 200 and "Alex" in html.content.decode() and html["X-Frame-Options"] == "SAMEORIGIN"
    for who in (str(delivery.subscriber_id), "LEE@example.org"):
        chosen = client.get(reverse("email_preview:step_html", args=[step.pk]), {"subscriber": who})
        body = chosen.content.decode()
        assert "Lee" in body and "Alex" not in body
        # Preview links never act on the real subscriber.
        assert SAMPLE_TOKEN in body and "/unsubscribe/" in body
    unknown = client.get(reverse("email_preview:step", args=[step.pk]), {"subscriber": "nobody@example.org"}, follow=True)
    assert "No subscriber matches" in unknown.content.decode()


def test_sample_links_in_previews_do_nothing(client, delivery):
    url = build_delivery_email(delivery, sample_links=True).extra_headers["List-Unsubscribe"].strip("<>")
    response = client.post(url.removeprefix("https://guide.example.org"))
    assert response.status_code == 400
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"


def test_test_send_goes_to_the_staff_member_and_creates_no_delivery(client, staff, delivery):
    verified_login(client, staff)
    deliveries_before = Delivery.objects.count()
    response = client.post(
        reverse("email_preview:step_test_send", args=[delivery.step_id]) + f"?subscriber={delivery.subscriber_id}", follow=True
    )
    assert response.status_code == 200 and "Test email sent to editor@example.org" in response.content.decode()
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["editor@example.org"] and sent.subject == "[TEST] " + delivery.step.subject
    assert "Lee" in sent.body and SAMPLE_TOKEN in sent.body
    assert Delivery.objects.count() == deliveries_before


def test_test_send_without_a_staff_email_says_so(client, staff, library):
    staff.email = ""
    staff.save()
    verified_login(client, staff)
    step = Step.objects.first()
    response = client.post(reverse("email_preview:step_test_send", args=[step.pk]), follow=True)
    assert "has no email address" in response.content.decode()
    assert len(mail.outbox) == 0


def test_test_send_needs_post(client, staff, library):
    verified_login(client, staff)
    assert client.get(reverse("email_preview:step_test_send", args=[Step.objects.first().pk])).status_code == 405


def test_journey_lists_every_email_with_its_date(client, staff, library, settings):
    import time_machine

    settings.NURTURE_DAY_SECONDS = 86400
    verified_login(client, staff)
    # 10:00 UTC: inside the daytime window, so each email goes exactly its delay after the last.
    with time_machine.travel("2026-03-02 10:00Z", tick=False):
        response = client.get(reverse("email_preview:journey"), {"stage": "in_remission", "language": "es"})
    assert response.status_code == 200
    journey = response.context["journey"]
    steps = list(Step.objects.filter(series__stage="in_remission", series__language="es").order_by("position"))
    assert [item.step.pk for item in journey] == [s.pk for s in steps]
    start = response.context["start"]
    expected = start
    for index, (item, step) in enumerate(zip(journey, steps)):
        if index:
            expected += timedelta(days=step.delay_days)
        assert item.send_at == expected
    body = response.content.decode()
    assert all(s.subject in body for s in steps)


def test_journey_skips_a_step_with_nothing_new_and_counts_from_the_last_email(library, settings):
    from content.models import Article
    from nurture.selectors.series import series_journey

    settings.NURTURE_DAY_SECONDS = 86400
    steps = list(Step.objects.filter(series__stage="in_remission", series__language="en").order_by("position"))
    for article in steps[1].articles.all():
        Article.objects.filter(pk=article.pk).update(status=Article.Status.DRAFT)
    start = datetime(2026, 3, 2, 10, 0, tzinfo=dt_timezone.utc)
    journey = series_journey(series_id=steps[0].series_id, start=start)
    assert [j.step.pk for j in journey][:2] == [steps[0].pk, steps[2].pk]
    # As the planner does it: step 3's own delay counts from the last email sent (step 1's).
    assert journey[1].send_at == start + timedelta(days=steps[2].delay_days)


def test_journey_follows_the_planners_daytime_window_and_gap(library, settings):
    from nurture.rules import next_send_time
    from nurture.selectors.series import series_journey

    settings.NURTURE_DAY_SECONDS = 86400
    settings.NURTURE_SEND_WINDOW_START_HOUR, settings.NURTURE_SEND_WINDOW_END_HOUR = 9, 17  # the production window
    series = Step.objects.filter(series__stage="in_treatment", series__language="en").first().series
    start = datetime(2026, 3, 2, 23, 30, tzinfo=dt_timezone.utc)  # confirmed at night in New York's evening
    journey = series_journey(series_id=series.pk, start=start, time_zone="America/New_York")
    assert journey[0].send_at == next_send_time(
        last_sent_at=None, delay_days=0, cadence="as_planned", time_zone="America/New_York", now=start, started_at=start
    )
    for earlier, later in zip(journey, journey[1:]):
        local = later.send_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
        assert 9 <= local.hour < 17  # inside their daytime window
        assert later.send_at - earlier.send_at >= timedelta(days=max(2, later.step.delay_days))


def test_journey_rejects_unknown_choices(client, staff, library):
    verified_login(client, staff)
    response = client.get(reverse("email_preview:journey"), {"stage": "cured", "language": "fr"}, follow=True)
    assert response.status_code == 200 and "Choose a stage and a language" in response.content.decode()
