"""Provider events settle an `unknown` delivery (handed over, answer never heard): found by the
delivery id in the metadata we send (Postmark) or our Message-ID (Mailgun), only for the address the
message went to, through anymail's real Postmark tracking view."""
from __future__ import annotations

import pytest

from nurture.models import Delivery, ProviderEvent, Suppression
from tests.nurture.webhooks.test_webhooks import (  # noqa: F401 (fixtures)
    bounce, post, sent, webhook_settings,
)

pytestmark = pytest.mark.django_db


def unknown(delivery) -> Delivery:
    Delivery.objects.filter(pk=delivery.pk).update(status="unknown", provider_message_id="", failure_reason="unknown outcome: ReadTimeout")
    delivery.refresh_from_db()
    return delivery


def delivered(delivery, *, recipient=None, message_id="pm-heard-at-last", event_id=7):
    return {
        "RecordType": "Delivery", "MessageStream": "outbound", "ServerID": 23, "MessageID": message_id,
        "Recipient": recipient or delivery.subscriber.email, "Tag": "", "DeliveredAt": "2026-11-27T10:00:00Z",
        "Details": "Test delivery webhook details", "Metadata": {"delivery": str(delivery.pk)},
    }


def test_a_delivery_event_naming_our_delivery_id_settles_unknown_as_sent(client, sent):
    held = unknown(sent["stays@example.org"])
    assert post(client, delivered(held)).status_code == 200
    held.refresh_from_db()
    assert held.status == "sent" and held.provider_message_id == "pm-heard-at-last" and held.failure_reason == ""
    assert ProviderEvent.objects.get().matched


def test_an_event_for_another_address_does_not_settle_it(client, sent):
    held = unknown(sent["stays@example.org"])
    assert post(client, delivered(held, recipient="bounce.me@example.org")).status_code == 200
    held.refresh_from_db()
    assert held.status == "unknown"
    assert not ProviderEvent.objects.get().matched


def test_a_hard_bounce_settles_unknown_as_failed_and_suppresses(client, sent):
    held = unknown(sent["bounce.me@example.org"])
    event = bounce(held, event_id=99)
    event["MessageID"] = "pm-bounced"
    event["Metadata"] = {"delivery": str(held.pk)}
    assert post(client, event).status_code == 200
    held.refresh_from_db()
    assert held.status == "failed" and held.failure_reason == "provider event: bounced"
    assert Suppression.objects.filter(email__iexact="bounce.me@example.org").exists()


def test_the_metadata_never_moves_a_delivery_that_is_not_waiting_for_an_answer(client, sent):
    done = sent["stays@example.org"]  # sent, with its provider id
    before = done.provider_message_id
    assert post(client, delivered(done, message_id="pm-someone-else")).status_code == 200
    done.refresh_from_db()
    assert done.status == "sent" and done.provider_message_id == before
