"""Mailjet's Send API v3.1 as a messages batch (a "Messages" array of whole messages, 50 per call),
through anymail's real Mailjet backend talking to the fake Mailjet on 127.0.0.1: each delivery keeps
its own body, headers, CustomID and metadata; each message's answer is mapped back to its delivery
once; a message Mailjet refuses inside the call fails alone."""
from __future__ import annotations

import base64
import json

import pytest
import time_machine
from anymail.exceptions import AnymailAPIError

from nurture import providers, send_errors
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery, Suppression
from nurture import sending
from support.fake_provider import CLIENT_TIMEOUT
from tests.helpers.scheduler import send_one
from tests.nurture.sending.conftest import WEBHOOK_SECRET
from tests.nurture.sending.test_batch_postmark import loaded, planned

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailjet(settings, fast_sending):
    from support.fake_esps import FakeMailjet

    with FakeMailjet() as fake:
        wired = fake.anymail_settings()
        settings.NURTURE_BATCH_SEND = True
        settings.EMAIL_BACKEND = wired["EMAIL_BACKEND"]
        settings.ANYMAIL = {**settings.ANYMAIL, **wired["ANYMAIL"], "WEBHOOK_SECRET": WEBHOOK_SECRET}
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake


def batch_calls(fake) -> list[list[dict]]:
    """The Messages of each call that went as a batch (anymail's single send has its Globals)."""
    return [call["Messages"] for call in fake.state.calls if not call.get("Globals")]


def test_whole_messages_go_in_one_call_each_with_its_own_body_headers_and_custom_id(mailjet):
    ids = planned(5, names=True)
    with time_machine.travel(1_800_000_000, tick=False):  # signed links carry a timestamp
        assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 5}
        singles = {i: build_delivery_email(loaded(i)) for i in ids}
    [call] = batch_calls(mailjet)
    assert len(call) == 5 and len(mailjet.state.calls) == 1
    for message in call:
        delivery = loaded(int(message["CustomID"]))
        single = singles[delivery.pk]
        assert [to["Email"] for to in message["To"]] == [delivery.subscriber.email]
        assert message["TextPart"] == single.body and message["HTMLPart"] == single.alternatives[0][0]
        assert message["Subject"] == single.subject
        assert message["Headers"]["Message-ID"] == delivery.message_id
        assert message["Headers"]["List-Unsubscribe"] == single.extra_headers["List-Unsubscribe"]
        assert json.loads(message["EventPayload"]) == {"delivery": str(delivery.pk)}
        assert message["CustomCampaign"] == "series"  # the bulk stream's tag, never the stage
    assert len({m["TextPart"] for m in call}) == 5 and len({m["Headers"]["Message-ID"] for m in call}) == 5
    # Mailjet's events report each recipient's MessageID: each delivery keeps its own.
    provider_ids = {d["to"]: d["provider_id"] for d in mailjet.state.delivered}
    for delivery_id in ids:
        delivery = loaded(delivery_id)
        assert delivery.status == "sent" and delivery.provider_message_id == provider_ids[delivery.subscriber.email]
    assert sorted(mailjet.state.acceptances_by_message_id().values()) == [1] * 5


def test_a_call_carries_at_most_fifty_messages(mailjet):
    ids = planned(60)
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 60}
    assert [len(call) for call in batch_calls(mailjet)] == [50, 10]


def test_a_partial_failure_marks_only_the_failed_message(mailjet):
    ids = planned(4)
    mailjet.state.bad_request_for = {"p2@example.org"}  # Mailjet: HTTP 400, this message "error", the rest sent
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 3, "failed": 1} and not outcome.retry_ids
    rows = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    failed = rows["p2@example.org"]
    assert failed.status == "failed" and failed.failure_reason.endswith("Mailjet mj-0013")
    assert "p2@example.org" not in failed.failure_reason  # the reason never quotes the address
    assert not Suppression.objects.exists()
    for address in ("p0@example.org", "p1@example.org", "p3@example.org"):
        assert rows[address].status == "sent" and rows[address].provider_message_id
    # Exactly once: nothing is claimed again, nothing is sent twice.
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 4}
    assert len(mailjet.state.calls) == 1 and sorted(mailjet.state.acceptances_by_message_id().values()) == [1, 1, 1]


@pytest.mark.parametrize("fault", ["429", "500"])
def test_a_transient_error_retries_the_whole_call_and_then_each_is_sent_once(mailjet, fault):
    mailjet.state.first_faults = [fault]
    ids = planned(3)
    first = sending.deliveries_send(delivery_ids=ids)
    assert first.counts == {"retry": 3} and sorted(first.retry_ids) == ids
    assert sending.deliveries_send(delivery_ids=first.retry_ids).counts == {"sent": 3}
    assert sorted(mailjet.state.acceptances_by_message_id().values()) == [1, 1, 1]


def test_a_global_error_is_read_by_its_status():
    mailjet = next(p for p in providers.PROVIDERS if p.name == "mailjet")
    for status, kind in ((400, providers.PERMANENT), (401, providers.PERMANENT), (429, send_errors.TRANSIENT)):
        with pytest.raises(AnymailAPIError) as raised:
            mailjet.batch_answers({"ErrorIdentifier": "x", "ErrorCode": "mj-0002", "StatusCode": status, "ErrorMessage": "..."})
        assert send_errors.classify_send_error(raised.value) == kind


def test_a_single_delivery_goes_through_anymails_own_send(mailjet):
    [delivery_id] = planned(1)
    assert send_one(delivery_id=delivery_id).status == "sent"
    [call] = mailjet.state.calls
    assert call["Globals"]["CustomCampaign"] == "series" and len(call["Messages"]) == 1


def test_the_mailjet_bounce_webhook_finds_a_batch_sent_delivery(mailjet, client):
    ids = planned(3)
    sending.deliveries_send(delivery_ids=ids)
    target = loaded(ids[1])
    event = {
        "event": "bounce", "time": 1_800_000_000, "MessageID": int(target.provider_message_id), "email": target.subscriber.email,
        "mj_campaign_id": 0, "mj_contact_id": 1, "customcampaign": "series", "CustomID": str(target.pk),
        "Payload": json.dumps({"delivery": str(target.pk)}), "blocked": False, "hard_bounce": True,
        "error_related_to": "recipient", "error": "user unknown",
    }
    answer = client.post("/anymail/mailjet/tracking/", data=json.dumps([event]), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode())
    assert answer.status_code == 200
    assert target.events.count() == 1 and Suppression.objects.filter(email__iexact=target.subscriber.email).exists()
    assert Delivery.objects.exclude(pk=target.pk).filter(events__isnull=False).count() == 0
