"""The privacy notice is built from the settings and the staff roles, so it stays true; it is
linked from the sign-up form, the preference centre and every email's footer, in both languages."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from nurture import tokens
from nurture.emails.messages import build_confirmation_email
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


def test_the_notice_says_what_the_settings_say(client, settings):
    settings.NURTURE_ORG_NAME = "Helping Hands Cancer Trust"
    settings.NURTURE_ORG_HELPLINE = "0800 123 456"
    settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS = 45
    settings.NURTURE_PENDING_RETENTION_DAYS = 12
    settings.NURTURE_LINK_MAX_AGE_DAYS = 60
    html = client.get("/privacy/").content.decode()
    assert "This service is run by Helping Hands Cancer Trust." in html and "0800 123 456" in html
    assert "After you stop our emails: 45 days" in html and "If you never confirm your sign-up: 12 days." in html
    assert "The link works for 60 days" in html


def test_the_notice_names_the_roles_that_can_open_a_record(client):
    readers = Group.objects.create(name="Night desk")
    readers.permissions.add(Permission.objects.get(content_type__app_label="nurture", codename="view_subscriber"))
    Group.objects.create(name="Poster designers")  # no access: not named
    html = client.get("/privacy/").content.decode()
    assert "Night desk" in html and "Subscriber care" in html
    assert "Poster designers" not in html


def test_the_notice_in_spanish(client):
    client.cookies["django_language"] = "es"
    html = client.get("/privacy/").content.decode()
    assert '<html lang="es">' in html and "Cómo usamos su información" in html and "Quién puede verla" in html


def test_linked_from_sign_up_preferences_and_every_email(client):
    assert 'href="/privacy/"' in client.get("/").content.decode()
    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    prefs = client.get(f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)}/")
    assert 'href="/privacy/"' in prefs.content.decode()
    email = build_confirmation_email(ana)
    assert "https://guide.example.org/privacy/" in email.alternatives[0][0]
    assert "https://guide.example.org/privacy/" in email.body


def test_a_consent_record_reads_as_what_it_records():
    from nurture.models import ConsentRecord

    ana = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    record = ConsentRecord.objects.create(subscriber=ana, kind="pause", consent_text="x", language="en")
    assert str(record) == f"Paused, {record.given_at:%Y-%m-%d %H:%M} UTC"
    assert "object" not in str(record)
