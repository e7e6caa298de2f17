"""“Tell us someone has died”: the service (what stops, what is recorded, once only, the race with a
worker's hand-over), the public pages (two steps, GET never acts, the carer's support email), the
admin action (permission, audit), retention and the results' separate count."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from nurture import tokens
from nurture.selectors import results
from nurture.models import AuditEntry, Bereavement, CarerHandoff, ConsentRecord, Delivery, Subscriber, Suppression
from nurture.services import bereavement as services
from nurture.services import carers
from nurture.sending.ledger import deliveries_claim, deliveries_stamp_handed
from nurture.sending.recheck import deliveries_recheck
from nurture.services.retention import expired_data_purge
from nurture.services.signup import signup_request_process
from nurture.models import SignupRequest
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import signed_in_with_permissions

pytestmark = pytest.mark.django_db
SUPPORT = "Bereavement line: 0800 000 0000\nhttps://example.org/after-a-death"


@pytest.fixture(autouse=True)
def _support(settings):
    settings.NURTURE_BEREAVEMENT_SUPPORT = SUPPORT
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ana():
    return active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"]), (3, ["a2"]), (3, ["a3"])]))


def confirmed_carer(subscriber, address="tom@example.org") -> CarerHandoff:
    handoff = carers.carer_request(subscriber_id=subscriber.pk, carer_email=address, mode="as_well",
                                   enqueue=lambda _id: None, notify=lambda *_: None)
    return carers.carer_confirm(handoff_id=handoff.pk, notify=lambda *_: None)


def deliveries(subscriber, *statuses):
    steps = list(subscriber.series.steps.order_by("position"))
    return [Delivery.objects.create(subscriber=subscriber, step=steps[i], status=s) for i, s in enumerate(statuses)]


# --- the service -------------------------------------------------------------------------------------


def test_report_cancels_queued_and_claimed_not_handed_but_leaves_handed_rows(ana):
    queued, claimed, handed = deliveries(ana, "queued", "queued", "queued")
    stamp = timezone.now()
    assert deliveries_claim(delivery_ids=[claimed.pk, handed.pk], stamp=stamp) == sorted([claimed.pk, handed.pk])
    Delivery.objects.filter(pk=handed.pk).update(provider_call_started_at=timezone.now())

    outcome = services.bereavement_report(subscriber_id=ana.pk, source="preferences_page")

    assert outcome.created and outcome.cancelled == 2
    states = dict(Delivery.objects.values_list("pk", "status"))
    assert states == {queued.pk: "skipped", claimed.pk: "skipped", handed.pk: "sending"}
    assert Delivery.objects.get(pk=claimed.pk).failure_reason == services.CANCELLED_REASON
    ana.refresh_from_db()
    assert ana.status == Subscriber.Status.DECEASED and ana.next_send_at is None and ana.unsubscribed_at is None
    assert Suppression.objects.filter(email="ana@example.org").exists()
    record = ConsentRecord.objects.get(subscriber=ana, kind="bereavement")
    assert record.source == "preferences_page"
    assert not mail.outbox  # no goodbye email


def test_a_worker_that_claimed_before_the_report_cannot_hand_the_row_over_after_it(ana):
    [row] = deliveries(ana, "queued")
    stamp = timezone.now()
    deliveries_claim(delivery_ids=[row.pk], stamp=stamp)
    items, skips = deliveries_recheck(delivery_ids=[row.pk], stamp=stamp)
    assert [i.pk for i in items] == [row.pk] and not skips  # re-checked while still active
    services.bereavement_report(subscriber_id=ana.pk, source="admin")
    items[0].message = type("M", (), {"extra_headers": {"Message-ID": "<x@example.org>"}})()
    assert deliveries_stamp_handed(items=items, stamp=stamp) == []  # the hand-over stamp lost the race
    assert Delivery.objects.get(pk=row.pk).status == "skipped"


def test_a_later_send_batch_skips_and_nothing_is_planned(ana):
    from nurture.services.planning import deliveries_plan_due

    services.bereavement_report(subscriber_id=ana.pk, source="preferences_page")
    assert deliveries_plan_due(enqueue=lambda ids, countdown=None: None).planned == 0
    assert not Delivery.objects.exists()


def test_report_stops_the_carer_and_only_a_carer_who_asked_gets_one_support_email(ana):
    handoff = confirmed_carer(ana)
    sent = []
    outcome = services.bereavement_report(
        subscriber_id=ana.pk, source="carer_page", carer_handoff_id=handoff.pk, carer_wants_support=True,
        enqueue_support=sent.append,
    )
    handoff.refresh_from_db()
    assert handoff.status == "stopped" and handoff.stopped_by == "bereavement"
    assert outcome.bereavement.support_email_to == "tom@example.org"
    assert services.bereavement_support_email_send(bereavement_id=outcome.bereavement.pk)
    assert not services.bereavement_support_email_send(bereavement_id=outcome.bereavement.pk)  # once
    [message] = mail.outbox
    assert message.to == ["tom@example.org"] and "0800 000 0000" in message.body
    assert "treatment" not in message.body.lower() and "ana@" not in message.body


def test_no_support_email_unless_asked_or_without_the_setting(ana, settings):
    handoff = confirmed_carer(ana)
    outcome = services.bereavement_report(subscriber_id=ana.pk, source="carer_page", carer_handoff_id=handoff.pk)
    assert outcome.bereavement.support_email_to == ""
    assert not services.bereavement_support_email_send(bereavement_id=outcome.bereavement.pk)
    settings.NURTURE_BEREAVEMENT_SUPPORT = ""
    assert not services.carer_may_ask_for_support(handoff)


def test_reported_once_a_second_report_changes_nothing(ana):
    first = services.bereavement_report(subscriber_id=ana.pk, source="preferences_page")
    second = services.bereavement_report(subscriber_id=ana.pk, source="admin")
    assert not second.created and second.bereavement.pk == first.bereavement.pk
    assert ConsentRecord.objects.filter(kind="bereavement").count() == 1
    assert Bereavement.objects.get().source == "preferences_page"


def test_a_later_bounce_or_sign_up_does_not_undo_it(ana):
    from nurture.services.suppression import address_suppress

    services.bereavement_report(subscriber_id=ana.pk, source="admin")
    address_suppress(email="ana@example.org", reason="hard bounce")
    assert Subscriber.objects.get(pk=ana.pk).status == Subscriber.Status.DECEASED
    request = SignupRequest.objects.create(email="ana@example.org", stage="in_treatment", language="en", consent_text="x")
    assert signup_request_process(request_id=request.pk) == SignupRequest.State.DROPPED


def test_retention_purges_the_record_and_keeps_only_the_suppressed_address(ana, settings):
    services.bereavement_report(subscriber_id=ana.pk, source="preferences_page")
    later = timezone.now() + dt.timedelta(days=settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS - 1)
    assert expired_data_purge(now=later).deceased_subscribers == 0
    later = timezone.now() + dt.timedelta(days=settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS + 1)
    assert expired_data_purge(now=later).deceased_subscribers == 1
    assert not Subscriber.objects.exists() and not Bereavement.objects.exists() and not ConsentRecord.objects.exists()
    assert Suppression.objects.get().reason == services.SUPPRESSION_REASON


def test_results_count_bereavements_apart_from_leaving(ana):
    services.bereavement_report(subscriber_id=ana.pk, source="admin")
    today = timezone.now().date()
    period = results.Period("custom", today, today)
    assert results.bereavements_reported(period=period) == 1
    assert results.departure_times(kind="unsubscribe").count() == 0


# --- the public pages --------------------------------------------------------------------------------


def prefs_bereavement_url(subscriber) -> str:
    return reverse("nurture:bereavement", args=[tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)])


def carer_bereavement_url(handoff) -> str:
    token = tokens.make_token(purpose=tokens.CARER_STOP, subscriber_id=handoff.subscriber_id, extra=str(handoff.pk))
    return reverse("nurture:carer_bereavement", args=[token])


def test_preference_centre_foot_links_to_it_in_the_persons_language(client):
    sofia = active_subscriber("sofia@example.org", series("in_treatment", [(0, ["a1"])], language="es"))
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=sofia.pk)
    page = client.get(f"/preferences/{token}/")
    assert reverse("nurture:bereavement", args=[token]) in page.content.decode()
    first = client.get(reverse("nurture:bereavement", args=[token]))
    assert "fallecido" in first.content.decode()


def test_two_steps_and_get_never_acts(client, ana):
    url = prefs_bereavement_url(ana)
    first = client.get(url)
    assert first.status_code == 200 and "step" in first.content.decode()
    second = client.get(url, {"step": "confirm"})
    assert second.status_code == 200 and "Yes, stop all emails" in second.content.decode()
    assert Subscriber.objects.get(pk=ana.pk).status == "active"  # opening either page changes nothing
    done = client.post(url)
    assert done.status_code == 200 and "Thank you for telling us" in done.content.decode()
    assert Subscriber.objects.get(pk=ana.pk).status == "deceased"
    again = client.post(url)
    assert again.status_code == 200 and "already been told" in again.content.decode()
    prefs = client.get(f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)}/")
    assert "already been told" in prefs.content.decode()  # the preference page can no longer change anything


def test_support_offered_only_on_the_carer_page(client, ana, django_capture_on_commit_callbacks):
    handoff = confirmed_carer(ana)
    assert "support after a bereavement" not in client.get(prefs_bereavement_url(ana)).content.decode()
    url = carer_bereavement_url(handoff)
    assert 'name="support"' in client.get(url).content.decode()
    assert 'value="yes"' in client.get(url, {"step": "confirm", "support": "yes"}).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"support": "yes"})
    assert "one email with details of support" in done.content.decode()
    assert [m.to for m in mail.outbox] == [["tom@example.org"]]  # the support email, nothing to Ana
    assert Bereavement.objects.get().source == "carer_page"


def test_bad_link_gets_the_plain_page(client):
    assert client.get("/preferences/not-a-token/bereavement/").status_code == 400
    assert client.post("/carer/bereavement/not-a-token/").status_code == 400


# --- the admin action --------------------------------------------------------------------------------


def staff(client, *perms):
    return signed_in_with_permissions(client, *perms)


def act(client, subscriber, **extra):
    return client.post(reverse("admin:nurture_subscriber_changelist"), {
        "action": "report_bereavement", "_selected_action": [str(subscriber.pk)], **extra,
    })


def test_admin_action_two_steps_recorded_with_who_in_the_audit_trail(client, ana):
    staff(client, "nurture.view_subscriber", "nurture.change_subscriber")
    ask = act(client, ana)
    assert ask.status_code == 200 and "cannot be undone" in ask.content.decode()
    assert Subscriber.objects.get(pk=ana.pk).status == "active"
    act(client, ana, apply="1")
    assert Subscriber.objects.get(pk=ana.pk).status == "deceased"
    report = Bereavement.objects.get()
    assert (report.source, report.reported_by) == ("admin", "carol")
    entry = AuditEntry.objects.get(subscriber_id=ana.pk, action="change")
    assert entry.username == "carol" and "bereavement" in entry.detail


def test_admin_action_needs_the_change_permission(client, ana):
    staff(client, "nurture.view_subscriber")
    act(client, ana, apply="1")
    assert Subscriber.objects.get(pk=ana.pk).status == "active" and not Bereavement.objects.exists()
