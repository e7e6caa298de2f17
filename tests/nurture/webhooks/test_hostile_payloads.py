"""Webhooks against hostile or odd payloads: a Postmark bounce with an empty MessageID
acts on nobody (the recipient fallback is for providers whose events carry no id), JSON nested
5,000 deep is a 400 rather than a 500, and every suppression by a provider event leaves a consent
record on the subscriber saying why."""
from __future__ import annotations

import pytest

from nurture.models import ConsentRecord, ProviderEvent, Subscriber, Suppression
from nurture import providers
from tests.nurture.webhooks.test_webhooks import (  # noqa: F401 (fixtures)
    bounce, complaint, post, sent, webhook_settings,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("message_id", ["", None])
def test_a_postmark_bounce_with_an_empty_message_id_suppresses_nobody(client, sent, message_id):
    Subscriber.objects.update(last_sent_at=Subscriber.objects.values_list("last_sent_at", flat=True).first())
    payload = bounce(sent["bounce.me@example.org"], event_id=777)
    payload["MessageID"] = message_id
    assert post(client, payload).status_code == 200
    event = ProviderEvent.objects.get()
    assert not event.matched and not event.suppressed_address
    assert not Suppression.objects.exists()
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "active"


def test_the_known_providers_name_their_messages_and_an_unknown_one_does_not():
    assert all(providers.events_carry_message_id(provider=name) for name in ("postmark", "mailgun", "sparkpost", "sendgrid"))
    assert not providers.events_carry_message_id(provider="some-other-esp")


def test_json_nested_five_thousand_deep_is_a_400_not_a_500(client, sent):
    deep = "[" * 5000 + "]" * 5000
    response = post(client, '{"RecordType": "Bounce", "Metadata": ' + deep + "}")
    assert response.status_code == 400
    response = post(client, deep)
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


@pytest.mark.parametrize("make, source", [(bounce, "bounce"), (complaint, "complaint")])
def test_a_suppression_by_the_provider_is_a_consent_record_on_the_subscriber(client, sent, make, source):
    assert post(client, make(sent["bounce.me@example.org"])).status_code == 200
    subscriber = Subscriber.objects.get(email="bounce.me@example.org")
    assert subscriber.status == "suppressed"
    record = ConsentRecord.objects.get(subscriber=subscriber, kind="suppressed")
    assert record.source == source and "in_treatment" not in record.consent_text
    assert not ConsentRecord.objects.filter(subscriber__email="stays@example.org").exists()
