"""Webhooks touch only their own message: an authenticated bounce, complaint or
unsubscribe acts only when its message id is a delivery we sent to that address, or (providers
that send no id) the recipient is someone we emailed lately. Anything else is stored, marked
unmatched, shown to staff and not acted on. Only the configured provider's tracking URL answers."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from nurture.models import ProviderEvent, Subscriber, Suppression
from nurture.selectors.subscribers import is_suppressed
from nurture.services import webhooks
from tests.nurture.webhooks.test_webhooks import (  # noqa: F401 (fixtures)
    SECRET, auth, bounce, complaint, post, sent, webhook_settings,
)

pytestmark = pytest.mark.django_db


def test_a_bounce_for_a_message_id_we_never_sent_is_stored_unmatched_and_inert(client, sent):
    forged = bounce(sent["bounce.me@example.org"], event_id=501)
    forged["MessageID"] = "never-sent-by-us"
    assert post(client, forged).status_code == 200
    event = ProviderEvent.objects.get()
    assert not event.matched and not event.suppressed_address and event.delivery is None
    assert not Suppression.objects.exists()
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "active"


def test_a_complaint_naming_another_address_than_the_message_went_to_is_inert(client, sent):
    """A real message id, but the event's recipient is someone else: it must not suppress either."""
    event = complaint(sent["bounce.me@example.org"], event_id=502)
    event["Email"] = "stays@example.org"
    assert post(client, event).status_code == 200
    stored = ProviderEvent.objects.get()
    assert not stored.matched and not stored.suppressed_address
    assert not Suppression.objects.exists()
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"active"}


def test_a_matching_bounce_still_suppresses(client, sent):
    assert post(client, bounce(sent["bounce.me@example.org"])).status_code == 200
    assert ProviderEvent.objects.get().matched
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "suppressed"


def test_without_a_message_id_only_a_recently_emailed_recipient_matches(sent, settings):
    from anymail.signals import AnymailTrackingEvent

    settings.NURTURE_WEBHOOK_RECIPIENT_DAYS = 30

    def complaint_without_id(recipient, event_id):
        return AnymailTrackingEvent(event_type="complained", recipient=recipient, event_id=event_id, message_id=None, esp_event={})

    Subscriber.objects.filter(email="stays@example.org").update(last_sent_at=timezone.now() - timedelta(days=31))
    Subscriber.objects.filter(email="bounce.me@example.org").update(last_sent_at=timezone.now() - timedelta(days=2))
    for n, recipient in enumerate(["stays@example.org", "stranger@example.net", "Bounce.Me@example.org"]):
        webhooks.tracking_event_record(provider="an-esp-without-ids", event=complaint_without_id(recipient, f"no-id-{n}"))
    assert list(ProviderEvent.objects.order_by("event_id").values_list("matched", flat=True)) == [False, False, True]
    assert not is_suppressed(email="stays@example.org")
    assert not is_suppressed(email="stranger@example.net")
    assert is_suppressed(email="bounce.me@example.org")


def test_only_the_configured_providers_tracking_url_answers(client, sent, settings):
    payload = json.dumps(bounce(sent["bounce.me@example.org"]))
    for url in ("/anymail/mailgun/tracking/", "/anymail/sendgrid/tracking/", "/anymail/mailgun/inbound/", "/anymail/mandrill/"):
        response = client.post(url, data=payload, content_type="application/json", **auth())
        assert response.status_code == 404, url
    # The configured provider's inbound URL takes replies: a tracking event sent there is refused.
    assert client.post("/anymail/postmark/inbound/", data=payload, content_type="application/json", **auth()).status_code == 400
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # no provider: no webhook
    assert client.post("/anymail/postmark/tracking/", data=payload, content_type="application/json", **auth()).status_code == 404
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()


def test_staff_see_unmatched_events(admin_client, client, sent):
    forged = bounce(sent["bounce.me@example.org"], event_id=503)
    forged["MessageID"] = "never-sent-by-us"
    post(client, forged)
    page = admin_client.get("/admin/nurture/providerevent/?matched__exact=0")
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == list(ProviderEvent.objects.filter(matched=False))
    assert "matched" in page.content.decode()
