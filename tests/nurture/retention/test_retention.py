"""Data retention: what `purge_expired_data` deletes and keeps, with the clock moved by time-machine."""
from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from config.celery import app
from nurture.models import ConsentRecord, Delivery, ProviderEvent, SignupRequest, Subscriber, Suppression
from nurture.services import planning, retention
from nurture.services import signup as signup_services
from nurture.services import subscribers as subscriber_services
from nurture.services.suppression import address_suppress
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 5, 10, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def retention_settings(settings):
    settings.NURTURE_CONFIRM_MAX_AGE_DAYS = 7
    settings.NURTURE_PENDING_RETENTION_DAYS = 30
    settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS = 90
    settings.NURTURE_EVENT_RETENTION_DAYS = 180
    settings.NURTURE_DAY_SECONDS = 10


def sign_up(email: str) -> Subscriber | None:
    """The form's write and the worker's decision (services/signup.py), without the email."""
    request_id = signup_services.signup_request_store(
        email=email, first_name="Ana", stage="in_treatment", language="en", time_zone="UTC", consent_text="I agree.",
        enqueue=lambda request_id: None,  # the worker's decision is made just below
    )
    signup_services.signup_request_process(request_id=request_id)
    return Subscriber.objects.filter(email__iexact=email).first()


def purge(at: datetime, **options) -> retention.PurgeResult:
    with time_machine.travel(at, tick=False):
        return retention.expired_data_purge(**options)


def emails() -> set[str]:
    return set(Subscriber.objects.values_list("email", flat=True))


def test_unconfirmed_sign_ups_go_after_the_link_expired_plus_the_grace_period():
    with time_machine.travel(START, tick=False):
        old = sign_up("old@example.org")
    with time_machine.travel(START + timedelta(days=10), tick=False):
        sign_up("recent@example.org")
    with time_machine.travel(START + timedelta(days=1), tick=False):
        confirmed = sign_up("confirmed@example.org")
        request = SignupRequest.objects.get(subscriber=confirmed)
        subscriber_services.subscriber_confirm(subscriber_id=confirmed.pk, request_id=request.pk)

    # Day 36: the first link expired on day 7, its grace ends on day 37.
    assert purge(START + timedelta(days=36, hours=23)).pending_subscribers == 0
    result = purge(START + timedelta(days=37, minutes=1))
    assert result.pending_subscribers == 1
    assert emails() == {"recent@example.org", "confirmed@example.org"}
    assert not ConsentRecord.objects.filter(subscriber_id=old.pk).exists()
    assert ConsentRecord.objects.filter(subscriber__email="confirmed@example.org").exists()


def test_signing_up_again_starts_a_new_period():
    with time_machine.travel(START, tick=False):
        sign_up("again@example.org")
    with time_machine.travel(START + timedelta(days=30), tick=False):
        sign_up("again@example.org")  # a fresh confirmation link, a fresh sign-up request
    assert purge(START + timedelta(days=40)).pending_subscribers == 0
    assert purge(START + timedelta(days=30 + 38)).pending_subscribers == 1
    assert not emails()


def test_people_who_left_are_deleted_with_their_history_after_the_retention_period():
    the_series = series("in_treatment", [(0, ["first-article"])])
    with time_machine.travel(START, tick=False):
        left = active_subscriber("left@example.org", the_series)
        active_subscriber("active@example.org", the_series)
        planning.deliveries_plan_due()
        ProviderEvent.objects.create(
            provider="postmark", event_id="e1", event_type="delivered",
            delivery=Delivery.objects.get(subscriber=left), timestamp=START,
        )
        ConsentRecord.objects.create(subscriber=left, consent_text="I agree.", language="en")
    with time_machine.travel(START + timedelta(days=5), tick=False):
        subscriber_services.subscriber_unsubscribe(subscriber_id=left.pk)

    assert purge(START + timedelta(days=94)).unsubscribed_subscribers == 0
    assert "left@example.org" in emails()
    result = purge(START + timedelta(days=96))
    assert result.unsubscribed_subscribers == 1
    assert emails() == {"active@example.org"}
    assert not Delivery.objects.filter(subscriber_id=left.pk).exists()
    assert not ConsentRecord.objects.filter(subscriber_id=left.pk).exists()
    # Their delivery's event stays until its own period ends, pointing at nothing.
    assert ProviderEvent.objects.get().delivery is None
    assert Delivery.objects.filter(subscriber__email="active@example.org").count() == 1
    # Leaving is not a suppression: they may sign up again, and that needs a new confirmation.
    assert not Suppression.objects.exists()
    again = sign_up("left@example.org")
    assert again.status == "pending" and again.pk != left.pk


def test_suppressed_people_lose_their_row_but_the_address_stays_suppressed(django_capture_on_commit_callbacks, mailoutbox):
    the_series = series("in_treatment", [(0, ["first-article"])])
    with time_machine.travel(START, tick=False):
        active_subscriber("bounced@example.org", the_series)
        address_suppress(email="bounced@example.org", reason="hard bounce (postmark webhook)")
    assert purge(START + timedelta(days=89)).suppressed_subscribers == 0
    assert purge(START + timedelta(days=91)).suppressed_subscribers == 1
    assert not emails()
    assert Suppression.objects.get().email == "bounced@example.org"
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_up("Bounced@example.org") is None
    assert not Subscriber.objects.exists() and not SignupRequest.objects.exists()  # nothing stored for it
    assert mailoutbox == []  # no confirmation email to a suppressed address


def test_provider_events_go_after_their_retention_period():
    with time_machine.travel(START, tick=False):
        ProviderEvent.objects.create(provider="postmark", event_id="old", event_type="bounced", timestamp=START)
    with time_machine.travel(START + timedelta(days=100), tick=False):
        ProviderEvent.objects.create(provider="postmark", event_id="newer", event_type="opened", timestamp=START)
    assert purge(START + timedelta(days=179)).provider_events == 0
    assert purge(START + timedelta(days=181)).provider_events == 1
    assert list(ProviderEvent.objects.values_list("event_id", flat=True)) == ["newer"]


def test_deletes_go_in_bounded_batches():
    with time_machine.travel(START, tick=False):
        for index in range(7):
            ProviderEvent.objects.create(provider="postmark", event_id=f"e{index}", event_type="delivered", timestamp=START)
    later = START + timedelta(days=200)
    assert purge(later, batch_size=3, max_batches=2).provider_events == 6  # the run stops at its bound
    assert ProviderEvent.objects.count() == 1
    assert purge(later, batch_size=3, max_batches=2).provider_events == 1  # the next run carries on
    assert not ProviderEvent.objects.exists()


def test_the_command_and_the_task_run_the_same_purge():
    with time_machine.travel(START, tick=False):
        ProviderEvent.objects.create(provider="postmark", event_id="a", event_type="delivered", timestamp=START)
        ProviderEvent.objects.create(provider="postmark", event_id="b", event_type="delivered", timestamp=START)
    out = StringIO()
    with time_machine.travel(START + timedelta(days=181), tick=False):
        ProviderEvent.objects.filter(event_id="b").update(received_at=START + timedelta(days=181))
        call_command("purge_expired_data", stdout=out)
        assert "provider events: 1 deleted" in out.getvalue()
        ProviderEvent.objects.filter(event_id="b").update(received_at=START)
        result = app.tasks["nurture.purge_expired_data"].delay().get()
    assert result["provider_events"] == 1 and not ProviderEvent.objects.exists()


def test_the_purge_is_on_the_daily_schedule_scaled_like_the_others(settings):
    from django_celery_beat.models import PeriodicTask

    from nurture.services import schedule

    settings.NURTURE_DAY_SECONDS = 86400
    schedule.periodic_tasks_ensure()
    task = PeriodicTask.objects.get(task="nurture.purge_expired_data")
    assert task.interval.every == 86400 and task.interval.period == "seconds"
    assert "nurture.purge_expired_data" in app.tasks
    settings.NURTURE_DAY_SECONDS = 20
    schedule.periodic_tasks_ensure()
    task.refresh_from_db()
    assert task.interval.every == 4


def test_erasing_on_request_deletes_the_row_and_keeps_only_a_suppression_marker():
    the_series = series("in_treatment", [(0, ["first-article"])])
    subscriber = active_subscriber("erase.me@example.org", the_series, first_name="Ana")
    planning.deliveries_plan_due()
    assert retention.subscriber_erase(subscriber_id=subscriber.pk)
    assert not Subscriber.objects.exists() and not Delivery.objects.exists()
    assert list(Suppression.objects.values_list("email", "reason")) == [("erase.me@example.org", "asked us to delete their data")]
    assert not retention.subscriber_erase(subscriber_id=subscriber.pk)  # twice: nothing left, no error
    assert not signup_services.subscriber_new_links_email(subscriber_id=subscriber.pk).sent


@pytest.mark.parametrize(
    "name, value",
    [("NURTURE_PENDING_RETENTION_DAYS", "a month"), ("NURTURE_UNSUBSCRIBED_RETENTION_DAYS", "0"), ("NURTURE_EVENT_RETENTION_DAYS", "-5")],
)
def test_a_bad_retention_setting_stops_start_up_naming_the_variable(name, value):
    from tests.config.test_checks import run_check

    result = run_check({name: value})
    assert result.returncode != 0
    assert f"{name}: (nurture.E001)" in result.stderr


def test_delete_my_data_from_the_preference_page_asks_first_then_erases(client):
    from nurture import tokens

    the_series = series("in_treatment", [(0, ["first-article"])])
    subscriber = active_subscriber("ana@example.org", the_series, first_name="Ana")
    url = f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"

    page = client.get(url).content.decode()
    assert 'value="erase"' in page and "do-not-email list" in page
    asked = client.post(url, {"action": "erase"})
    assert asked.status_code == 200 and 'value="erase_confirmed"' in asked.content.decode()
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()  # the first press deletes nothing

    done = client.post(url, {"action": "erase_confirmed"})
    assert done.status_code == 200 and "Your data is deleted" in done.content.decode()
    assert not Subscriber.objects.exists()
    assert Suppression.objects.filter(email="ana@example.org").exists()
    assert client.get(url).status_code == 400  # the link now names no one


def test_delete_my_data_pages_are_in_spanish_for_spanish_subscribers(client):
    from nurture import tokens

    the_series = series("in_treatment", [(0, ["first-article"])], language="es")
    subscriber = active_subscriber("ana.es@example.org", the_series)
    url = f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"
    assert "Borrar mis datos" in client.get(url).content.decode()
    assert "¿Borrar sus datos?" in client.post(url, {"action": "erase"}).content.decode()


def test_unconfirmed_sign_up_requests_go_with_the_same_period():
    """A stranger's sign-up for someone we hold waits unconfirmed: its choices are purged in time."""
    with time_machine.travel(START, tick=False):
        held = Subscriber.objects.create(email="held@example.org", stage="in_remission", status="unsubscribed", unsubscribed_at=START)
        sign_up("held@example.org")
    assert SignupRequest.objects.filter(subscriber=held).exists()
    assert purge(START + timedelta(days=36)).signup_requests == 0
    assert purge(START + timedelta(days=38)).signup_requests == 1
    assert not SignupRequest.objects.exists()
