"""Care features at the service level: pause lengths and automatic resume, the carer hand-off's
rules, treatment dates, consent records for each change, the export reader."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from content.models import Stage
from nurture.export import subscriber_export
from nurture.models import CarerHandoff, ConsentRecord, Delivery, ProviderEvent, Subscriber
from nurture.services import carers
from nurture.services import subscribers as services
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc


def kinds(subscriber) -> list[str]:
    return list(ConsentRecord.objects.filter(subscriber=subscriber).order_by("pk").values_list("kind", flat=True))


@pytest.fixture
def subscriber():
    return active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"]), (3, ["a2"])]), first_name="Ana")


# --- pause ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("weeks", [2, 4, 13])
def test_pause_for_an_offered_length_sets_its_end_and_records_it(subscriber, weeks):
    t0 = dt.datetime(2026, 6, 1, 10, tzinfo=UTC)
    with time_machine.travel(t0, tick=False):
        services.subscriber_pause(subscriber_id=subscriber.pk, weeks=weeks, source="pause_link")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PAUSED
    assert subscriber.paused_until == t0 + dt.timedelta(weeks=weeks)
    record = ConsentRecord.objects.get(subscriber=subscriber, kind="pause")
    assert record.source == "pause_link" and f"{weeks} week" in record.consent_text


@pytest.mark.parametrize("weeks", [0, 1, 3, 52, -2])
def test_pause_length_not_offered_changes_nothing(subscriber, weeks):
    with pytest.raises(services.InputError) as error:
        services.subscriber_pause(subscriber_id=subscriber.pk, weeks=weeks)
    assert error.value.field == "weeks"
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE and subscriber.paused_until is None
    assert kinds(subscriber) == []


def test_due_pauses_resume_by_themselves_with_a_welcome_back_owed(subscriber):
    t0 = dt.datetime(2026, 6, 1, 10, tzinfo=UTC)
    other = active_subscriber("other@example.org", subscriber.series)
    with time_machine.travel(t0, tick=False):
        services.subscriber_pause(subscriber_id=subscriber.pk, weeks=2)
        services.subscriber_pause(subscriber_id=other.pk, weeks=4)
    assert services.subscribers_resume_due(now=t0 + dt.timedelta(days=13)) == 0
    with time_machine.travel(t0 + dt.timedelta(days=14, seconds=1), tick=False):
        assert services.subscribers_resume_due() == 1
    subscriber.refresh_from_db()
    other.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE and subscriber.welcome_back_due and subscriber.paused_until is None
    assert other.status == Subscriber.Status.PAUSED
    resume = ConsentRecord.objects.get(subscriber=subscriber, kind="resume")
    assert resume.source == "automatic"


def test_a_pause_is_not_an_unsubscribe(subscriber):
    services.subscriber_pause(subscriber_id=subscriber.pk, weeks=2)
    subscriber.refresh_from_db()
    assert subscriber.unsubscribed_at is None
    assert not ConsentRecord.objects.filter(kind="unsubscribe").exists()
    assert Subscriber.objects.filter(status="unsubscribed").count() == 0


# --- carer -----------------------------------------------------------------------------------------


def noop(*args):
    return None


def test_carer_request_waits_for_the_carer_and_either_can_stop(subscriber, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        handoff = carers.carer_request(
            subscriber_id=subscriber.pk, carer_email="ben@example.org", mode="as_well", enqueue=noop, notify=noop
        )
    assert handoff.status == CarerHandoff.Status.PENDING
    carers.carer_confirm(handoff_id=handoff.pk, notify=noop)
    handoff.refresh_from_db()
    assert handoff.status == CarerHandoff.Status.ACTIVE and handoff.confirmed_at
    carers.carer_stop(handoff_id=handoff.pk, by="carer", source="carer_link", notify=noop)
    handoff.refresh_from_db()
    assert handoff.status == CarerHandoff.Status.STOPPED and handoff.stopped_by == "carer"
    assert kinds(subscriber) == ["carer_requested", "carer_confirmed", "carer_stopped"]


@pytest.mark.parametrize("address", ["ana@example.org", "  ANA@example.ORG "])
def test_carer_own_address_is_refused_and_nothing_changes(subscriber, address):
    with pytest.raises(services.InputError) as error:
        carers.carer_request(subscriber_id=subscriber.pk, carer_email=address, mode="instead", enqueue=noop, notify=noop)
    assert error.value.field == "carer_email"
    assert not CarerHandoff.objects.exists() and kinds(subscriber) == []


# --- treatment date --------------------------------------------------------------------------------


@pytest.mark.parametrize("days, ok", [(-1, False), (0, True), (365, True), (366, False)])
def test_treatment_date_range(subscriber, days, ok):
    when = timezone.localdate() + dt.timedelta(days=days)
    if ok:
        services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=when)
        subscriber.refresh_from_db()
        assert subscriber.treatment_date == when
        assert kinds(subscriber) == ["treatment_date_given"]
        assert when.isoformat() not in ConsentRecord.objects.get(subscriber=subscriber).consent_text
    else:
        with pytest.raises(services.InputError):
            services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=when)
        subscriber.refresh_from_db()
        assert subscriber.treatment_date is None and kinds(subscriber) == []


def test_leaving_the_recently_diagnosed_stage_removes_the_date(subscriber):
    series("in_treatment", [(0, ["b1"])])
    services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=timezone.localdate() + dt.timedelta(days=20))
    services.subscriber_update_preferences(
        subscriber_id=subscriber.pk, first_name="Ana", stage=Stage.IN_TREATMENT, language="en", cadence="as_planned"
    )
    subscriber.refresh_from_db()
    assert subscriber.treatment_date is None
    assert kinds(subscriber) == ["treatment_date_given", "treatment_date_removed", "stage_change"]


def test_sign_up_with_a_treatment_date_records_it_on_confirmation(client, django_capture_on_commit_callbacks):
    import re

    from django.core import mail

    when = timezone.localdate() + dt.timedelta(days=30)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/", {
            "email": "new@example.org", "stage": "recently_diagnosed", "language": "es", "consent": "on",
            "treatment_date": when.isoformat(),
        })
    assert response.status_code == 302
    subscriber = Subscriber.objects.get()
    assert subscriber.treatment_date is None  # waits on the sign-up request until confirmed
    confirm = re.search(r"https://guide\.example\.org(/confirm/[^/\s]+/)", mail.outbox[0].body).group(1)
    assert client.post(confirm).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.treatment_date == when
    assert kinds(subscriber) == ["signup", "treatment_date_given", "confirm"]
    assert ConsentRecord.objects.get(subscriber=subscriber, kind="treatment_date_given").consent_text.startswith("Di la fecha")
    assert ConsentRecord.objects.get(subscriber=subscriber, kind="signup").source == "signup_page"


def test_a_treatment_date_is_not_kept_for_another_stage(client, django_capture_on_commit_callbacks):
    from nurture.models import SignupRequest

    with django_capture_on_commit_callbacks(execute=False):
        client.post("/", {
            "email": "other@example.org", "stage": "in_treatment", "language": "en", "consent": "on",
            "treatment_date": (timezone.localdate() + dt.timedelta(days=30)).isoformat(),
        })
    assert SignupRequest.objects.get().treatment_date is None


def test_language_and_cadence_changes_are_recorded_in_the_new_language(subscriber):
    series("recently_diagnosed", [(0, ["a1"])], language="es")
    services.subscriber_update_preferences(
        subscriber_id=subscriber.pk, first_name="Ana", stage="recently_diagnosed", language="es", cadence="weekly"
    )
    records = {r.kind: r for r in ConsentRecord.objects.filter(subscriber=subscriber)}
    assert set(records) == {"language_change", "cadence_change"}
    assert records["language_change"].language == "es" and records["language_change"].consent_text.startswith("Cambié")


# --- export ----------------------------------------------------------------------------------------


def test_export_holds_everything_and_the_command_prints_the_same(subscriber, capsys):
    services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=timezone.localdate() + dt.timedelta(days=10))
    step = subscriber.series.steps.get(position=0)
    article_id = step.articles.get().pk
    delivery = Delivery.objects.create(
        subscriber=subscriber, step=step, status="sent", sent_at=timezone.now(), article_versions={str(article_id): 1}
    )
    ProviderEvent.objects.create(provider="postmark", event_id="e1", event_type="delivered", delivery=delivery, timestamp=timezone.now())
    services.subscriber_pause(subscriber_id=subscriber.pk, weeks=2, source="pause_link")
    handoff = carers.carer_request(
        subscriber_id=subscriber.pk, carer_email="ben@example.org", mode="as_well", enqueue=noop, notify=noop
    )
    data = subscriber_export(subscriber_id=subscriber.pk)
    assert data["profile"]["email"] == "ana@example.org" and data["profile"]["treatment_date"]
    assert [r["kind"] for r in data["consent_records"]] == ["treatment_date_given", "pause", "carer_requested"]
    assert data["consent_records"][1]["source"] == "pause_link" and data["consent_records"][1]["language"] == "en"
    [sent] = data["deliveries"]
    assert sent["articles"] == [{"slug": "a1", "language": "en", "title": "A1", "version": 1}]
    assert sent["provider_events"][0]["type"] == "delivered"
    assert data["pauses"][0]["resumes_automatically_at"]
    assert data["carer_handoffs"][0]["carer_email"] == "ben@example.org" and data["carer_handoffs"][0]["status"] == handoff.status
    call_command("subscriber_export", "ANA@example.org")
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(data))


# --- the treatment date never leaves the system ------------------------------------------------------


def test_the_treatment_date_is_in_no_log_link_header_or_email(subscriber, caplog, settings):
    import logging

    from nurture.emails.messages import build_delivery_email
    from nurture.services import planning

    caplog.set_level(logging.DEBUG)
    when = timezone.localdate() + dt.timedelta(days=45)
    services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=when)
    planning.deliveries_plan_due(now=timezone.now())
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(subscriber=subscriber)
    message = build_delivery_email(delivery)
    raw = message.message().as_string()
    forms = {when.isoformat(), when.strftime("%d/%m/%Y"), when.strftime("%m/%d/%Y"), when.strftime("%Y%m%d")}
    assert not any(f in raw for f in forms)
    assert not any(f in caplog.text for f in forms)
    assert all(when.isoformat() not in r.consent_text for r in ConsentRecord.objects.all())
    assert not getattr(message, "tags", None)
    assert getattr(message, "metadata", None) in (None, {}, {"delivery": str(delivery.pk)})  # ids only
