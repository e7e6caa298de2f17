"""Postmark's batch endpoint (/email/batch: up to 500 whole messages per call) and the two streams,
through anymail's real Postmark backend talking to the fake provider on 127.0.0.1: each delivery
keeps its own body, headers and metadata; each message's answer is mapped back to its delivery
once; service emails go on the transactional stream and series emails on the bulk one."""
from __future__ import annotations

import base64
import json

import pytest
import time_machine

from nurture import providers
from nurture.emails.messages import build_delivery_email
from nurture.models import CarerHandoff, Delivery, Subscriber, Suppression
from nurture.services import carers, planning, reconcile, signup
from nurture import sending
from nurture.sending.calls import provider_health
from support.fake_provider import CLIENT_TIMEOUT
from tests.helpers.scheduler import active_subscriber, series, send_one

pytestmark = pytest.mark.django_db

STAGES = ("in_treatment", "recently_diagnosed", "in_remission", "stage", "treatment")


@pytest.fixture(autouse=True)
def quick(fast_sending, settings):
    settings.NURTURE_BATCH_SEND = True


def planned(n: int, *, prefix: str = "p", names: bool = False) -> list[int]:
    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    for i in range(n):
        active_subscriber(f"{prefix}{i}@example.org", the_series, first_name=f"Name{i}" if names else "")
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def loaded(delivery_id: int) -> Delivery:
    return Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)


def batch_calls(fake) -> list[list[dict]]:
    return [call for call in fake.state.calls if isinstance(call, list)]


# --- one call, many personal messages ---------------------------------------------------------------

def test_500_distinct_personal_messages_go_in_one_call_and_each_delivery_keeps_its_own_id(postmark):
    ids = planned(500, names=True)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 500} and not outcome.retry_ids
    [call] = postmark.state.calls
    assert isinstance(call, list) and len(call) == 500
    # Each message is its own: greeting, links, Message-ID and metadata differ per recipient.
    assert len({m["TextBody"] for m in call}) == 500 and len({m["HtmlBody"] for m in call}) == 500
    headers = [{h["Name"]: h["Value"] for h in m["Headers"]} for m in call]
    assert len({h["List-Unsubscribe"] for h in headers}) == 500 and len({h["Message-ID"] for h in headers}) == 500
    by_id = {d.pk: d for d in Delivery.objects.select_related("subscriber")}
    provider_ids = {d["to"]: d["provider_id"] for d in postmark.state.delivered}
    for message, header in zip(call, headers):
        delivery = by_id[int(message["Metadata"]["delivery"])]
        assert message["To"] == delivery.subscriber.email and message["Metadata"] == {"delivery": str(delivery.pk)}
        assert f"Name{delivery.subscriber.email[1:].split('@')[0]}" in message["TextBody"]
        assert header["Message-ID"] == delivery.message_id
        assert delivery.status == "sent" and delivery.attempts == 1 and delivery.article_versions
        # Postmark's webhooks report its MessageID: each delivery keeps the one its message got.
        assert delivery.provider_message_id == provider_ids[delivery.subscriber.email]
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1] * 500


def test_a_batch_message_is_byte_for_byte_the_single_send(postmark):
    ids = planned(3, names=True)
    with time_machine.travel(1_800_000_000, tick=False):  # signed links carry a timestamp
        sending.deliveries_send(delivery_ids=ids)
        singles = {i: build_delivery_email(loaded(i)) for i in ids}
    [call] = batch_calls(postmark)
    for message in call:
        single = singles[int(message["Metadata"]["delivery"])]
        assert message["TextBody"] == single.body and message["HtmlBody"] == single.alternatives[0][0]
        assert message["Subject"] == single.subject


def test_nothing_about_the_stage_reaches_postmark_in_a_batch(postmark):
    ids = planned(4)
    sending.deliveries_send(delivery_ids=ids)
    [call] = batch_calls(postmark)
    for message in call:
        meta = json.dumps({k: v for k, v in message.items() if k not in ("TextBody", "HtmlBody")}).lower()
        assert not any(stage in meta for stage in STAGES)
        assert set(message["Metadata"]) == {"delivery"} and "Tag" not in message
        assert message["TrackOpens"] is False and message["MessageStream"] == "broadcast"


def test_a_call_carries_at_most_one_rate_windows_worth(postmark, settings):
    settings.NURTURE_SENDS_PER_SECOND = 5.0  # 4 granted a second: a call carries at most 4
    ids = planned(6)
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 6}
    assert [len(call) for call in batch_calls(postmark)] == [4, 2]


def test_a_single_delivery_goes_to_the_single_endpoint(postmark):
    [delivery_id] = planned(1)
    assert send_one(delivery_id=delivery_id).status == "sent"
    [call] = postmark.state.calls
    assert isinstance(call, dict) and call["MessageStream"] == "broadcast"


# --- each message's own answer ------------------------------------------------------------------------

def test_a_partial_failure_marks_only_the_failed_messages(postmark):
    ids = planned(5)
    postmark.state.inactive = {"p1@example.org"}  # Postmark: ErrorCode 406 for this message
    postmark.state.bad_request_for = {"p3@example.org"}  # ErrorCode 300 for this one
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 3, "failed": 2} and not outcome.retry_ids
    assert len(postmark.state.calls) == 1
    rows = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    assert rows["p1@example.org"].status == "failed" and "refused" in rows["p1@example.org"].failure_reason
    assert Suppression.objects.filter(email__iexact="p1@example.org").exists()
    assert Subscriber.objects.get(email="p1@example.org").status == "suppressed"
    assert rows["p3@example.org"].status == "failed" and "ErrorCode 300" in rows["p3@example.org"].failure_reason
    assert not Suppression.objects.filter(email__iexact="p3@example.org").exists()
    for address in ("p0@example.org", "p2@example.org", "p4@example.org"):
        assert rows[address].status == "sent" and rows[address].provider_message_id
    # Nobody is sent twice: the failed ones are settled, the sent ones are not claimed again.
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 5}
    assert len(postmark.state.calls) == 1


@pytest.mark.parametrize("fault", ["429", "500"])
def test_a_transient_error_retries_the_whole_call_and_then_each_is_sent_once(postmark, fault):
    postmark.state.first_faults = [fault]
    ids = planned(4)
    first = sending.deliveries_send(delivery_ids=ids)
    assert first.counts == {"retry": 4} and sorted(first.retry_ids) == ids
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    assert sending.deliveries_send(delivery_ids=first.retry_ids).counts == {"sent": 4}
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]


def test_no_answer_leaves_every_message_of_the_call_unknown_and_none_is_resent(postmark, settings):
    """The worker dies, or the answer never comes, after Postmark took the batch: every delivery of
    the call was stamped as handed over before the call, so none is sent again; the reconciler
    later settles them as unknown, never back to queued."""
    postmark.state.withhold_for = {"p1@example.org"}
    postmark.outwait_the_client(settings)
    ids = planned(3)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"unknown": 3} and outcome.retry_ids == []
    assert len(postmark.state.accepted) == 3
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 3}
    assert len(postmark.state.calls) == 1


class Killed(BaseException):
    """The worker process dying (not an error the sender could catch)."""


def test_a_worker_killed_after_the_call_never_sends_the_batch_again(postmark, monkeypatch):
    """Postmark took the batch and the worker died before recording the answers: every row of the
    call was stamped as handed over before the call, so the reconciler makes them unknown (for
    Postmark's webhooks to settle), never queued, and nothing is sent twice."""
    from datetime import timedelta

    from django.utils import timezone

    from nurture.sending import batch_calls as esp_batch

    ids = planned(4)

    def die(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(esp_batch, "_record_messages_answers", die)
    with pytest.raises(Killed):
        sending.deliveries_send(delivery_ids=ids)
    monkeypatch.undo()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sending"}
    result = reconcile.deliveries_reconcile(now=timezone.now() + timedelta(hours=1))
    assert result.unknown_outcome == 4 and result.requeued == 0
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 4}
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]


def planned_with_a_carer(*, mode: str) -> tuple[list[int], CarerHandoff]:
    """Three subscribers; p1's hand-off is in force (both sides confirmed) before planning, so the
    planner adds the carer's own copy as its own delivery."""
    from django.utils import timezone

    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    people = [active_subscriber(f"p{i}@example.org", the_series) for i in range(3)]
    now = timezone.now()
    handoff = CarerHandoff.objects.create(subscriber=people[1], carer_email="carer@example.org", status="active", mode=mode,
                                          carer_confirmed_at=now, subscriber_confirmed_at=now)
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True)), handoff


def test_a_carers_copy_in_a_batch_goes_to_the_carer_alone(postmark):
    ids, handoff = planned_with_a_carer(mode="instead")
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 3}
    carer_copy = Delivery.objects.get(carer_handoff=handoff)
    sent_to = {int(m["Metadata"]["delivery"]): m["To"] for call in batch_calls(postmark) for m in call}
    assert sent_to[carer_copy.pk] == "carer@example.org"
    assert sorted(sent_to.values()) == ["carer@example.org", "p0@example.org", "p2@example.org"]  # one To each


def test_the_postmark_bounce_webhook_finds_a_batch_sent_delivery(postmark, settings, client):
    ids = planned(3)
    sending.deliveries_send(delivery_ids=ids)
    target = loaded(ids[1])
    event = {
        "RecordType": "Bounce", "MessageStream": "broadcast", "ID": 77, "Type": "HardBounce", "TypeCode": 1,
        "MessageID": target.provider_message_id, "Metadata": {"delivery": str(target.pk)}, "ServerID": 23,
        "Email": target.subscriber.email, "BouncedAt": "2026-11-05T16:33:54Z", "Inactive": True,
        "Description": "unknown user", "Details": "smtp;550", "From": "guide@example.org", "Subject": "Step",
    }
    answer = client.post("/anymail/postmark/tracking/", data=json.dumps(event), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:secret").decode())
    assert answer.status_code == 200
    assert target.events.count() == 1 and Suppression.objects.filter(email__iexact=target.subscriber.email).exists()


# --- the two streams -------------------------------------------------------------------------------

def test_series_emails_go_on_the_bulk_stream_one_by_one_too(postmark, settings):
    settings.NURTURE_BATCH_SEND = False
    settings.NURTURE_POSTMARK_BULK_STREAM = "nurture-series"
    provider_health.forget()
    ids = planned(2)
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 2}
    assert [d["stream"] for d in postmark.state.delivered] == ["nurture-series", "nurture-series"]


def test_service_emails_go_on_the_transactional_stream(postmark, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url  # the per-mailbox throttle counts in Redis
    settings.NURTURE_POSTMARK_TRANSACTIONAL_STREAM = "nurture-service"
    the_series = series("in_treatment", [(0, ["first-article"])])
    subscriber = active_subscriber("waiting@example.org", the_series)
    assert signup.subscriber_new_links_email(subscriber_id=subscriber.pk).sent
    handoff = CarerHandoff.objects.create(subscriber=subscriber, carer_email="carer@example.org", mode="as_well")
    assert carers.carer_confirmation_email_send(handoff_id=handoff.pk).sent
    planning.deliveries_plan_due()
    [delivery_id] = Delivery.objects.values_list("id", flat=True)
    assert send_one(delivery_id=delivery_id).status == "sent"
    streams = [(d["to"], d["stream"]) for d in postmark.state.delivered]
    assert streams == [("waiting@example.org", "nurture-service"), ("carer@example.org", "nurture-service"),
                       ("waiting@example.org", "broadcast")]


def test_each_provider_says_how_its_streams_are_split(settings):
    settings.NURTURE_SENDGRID_BULK_ASM_GROUP = 1234
    settings.NURTURE_SES_BULK_CONFIGURATION_SET = "series-set"
    settings.NURTURE_MAILGUN_BULK_SENDER_DOMAIN = "news.example.org"
    by_name = {p.name: p for p in providers.PROVIDERS}
    assert by_name["postmark"].stream_options(providers.TRANSACTIONAL) == {"esp_extra": {"MessageStream": "outbound"}}
    assert by_name["postmark"].stream_options(providers.BULK) == {"esp_extra": {"MessageStream": "broadcast"}}
    assert by_name["sendgrid"].stream_options(providers.BULK) == {"tags": ["series"], "esp_extra": {"asm": {"group_id": 1234}}}
    assert by_name["sendgrid"].stream_options(providers.TRANSACTIONAL) == {"tags": ["service"]}
    assert by_name["amazon_ses"].stream_options(providers.BULK) == {"esp_extra": {"ConfigurationSetName": "series-set"}}
    assert by_name["amazon_ses"].stream_options(providers.TRANSACTIONAL) == {}
    assert by_name["mailgun"].stream_options(providers.BULK) == {"tags": ["series"], "esp_extra": {"sender_domain": "news.example.org"}}
    assert by_name["sparkpost"].stream_options(providers.TRANSACTIONAL) == {"esp_extra": {"options": {"transactional": True}}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert providers.configured().stream_options(providers.BULK) == {}


# --- Resend: the same messages batch ---------------------------------------------------------------

@pytest.fixture
def resend(settings):
    from support.fake_esps import FakeResend

    with FakeResend() as fake:
        wired = fake.anymail_settings()
        settings.EMAIL_BACKEND = wired["EMAIL_BACKEND"]
        # anymail refuses Resend any per-message tracking switch (Resend sets tracking per domain),
        # so the project's SEND_DEFAULTS (tracking off) cannot go with it.
        settings.ANYMAIL = wired["ANYMAIL"]
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake


def test_resend_sends_whole_messages_in_one_batch_call_each_with_its_own_id(resend):
    ids = planned(5, names=True)
    with time_machine.travel(1_800_000_000, tick=False):
        assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 5}
        singles = {i: build_delivery_email(loaded(i)) for i in ids}
    [call] = resend.state.calls
    assert isinstance(call, list) and len(call) == 5
    delivered = {d["to"]: d for d in resend.state.delivered}
    for delivery_id in ids:
        delivery = loaded(delivery_id)
        received = delivered[delivery.subscriber.email]
        assert received["text"] == singles[delivery_id].body and received["html"] == singles[delivery_id].alternatives[0][0]
        assert json.loads(received["headers"]["X-Metadata"]) == {"delivery": str(delivery_id)}
        assert received["headers"]["Message-ID"] == delivery.message_id
        assert delivery.status == "sent" and delivery.provider_message_id == received["provider_id"]


def test_resend_refuses_a_batch_as_a_whole_and_nothing_is_sent_twice(resend):
    ids = planned(3)
    resend.state.first_faults = ["500"]
    first = sending.deliveries_send(delivery_ids=ids)
    assert first.counts == {"retry": 3}
    assert sending.deliveries_send(delivery_ids=first.retry_ids).counts == {"sent": 3}
    assert sorted(resend.state.acceptances_by_message_id().values()) == [1, 1, 1]


def test_resend_refuses_a_batch_with_a_bad_address_as_a_whole(resend):
    ids = planned(3)
    resend.state.bad_request_for = {"p1@example.org"}
    assert sending.deliveries_send(delivery_ids=ids).counts == {"failed": 3}
    assert all("HTTP 422" in r for r in Delivery.objects.values_list("failure_reason", flat=True))
    assert resend.state.accepted == []


def test_a_refused_carer_is_suppressed_alone_and_the_subscribers_copy_still_counts(postmark):
    """A carer "as well": two copies, each its own message. Postmark refuses the inactive carer's:
    only the carer's address is suppressed; the subscriber's copy is sent."""
    ids, handoff = planned_with_a_carer(mode="as_well")
    postmark.state.inactive = {"carer@example.org"}
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 3, "failed": 1}
    assert Delivery.objects.get(carer_handoff=handoff).status == "failed"
    assert Suppression.objects.filter(email__iexact="carer@example.org").exists()
    assert not Suppression.objects.filter(email__iexact="p1@example.org").exists()
    assert Subscriber.objects.get(email="p1@example.org").status == "active"
