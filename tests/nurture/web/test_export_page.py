""""Download my data" as a web page, in every state a subscriber can be in: it always opens, and
it speaks the reader's language (labels and plain dates, not codes and ISO timestamps)."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from nurture import tokens
from nurture.models import CarerHandoff, Delivery, Subscriber
from nurture.services import carers
from nurture.services import subscribers as subscriber_services
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 12, 7, 3, 2, tzinfo=dt.timezone.utc)


def export_page(client, subscriber):
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    return client.get(f"/preferences/{token}/export/?format=html")


def _paused(s):
    subscriber_services.subscriber_pause(subscriber_id=s.pk, weeks=4)


def _paused_and_resumed(s):
    _paused(s)
    subscriber_services.subscriber_resume(subscriber_id=s.pk)


def _unsubscribed(s):
    subscriber_services.subscriber_unsubscribe(subscriber_id=s.pk)


def _pending(s):
    Subscriber.objects.filter(pk=s.pk).update(status=Subscriber.Status.PENDING, confirmed_at=None)


def _suppressed(s):
    Subscriber.objects.filter(pk=s.pk).update(status=Subscriber.Status.SUPPRESSED)


def _carer_asked(s):
    CarerHandoff.objects.create(subscriber=s, carer_email="tom@example.org")


def _carer_helping(s):
    handoff = CarerHandoff.objects.create(subscriber=s, carer_email="tom@example.org", mode="as_well")
    carers.carer_confirm(handoff_id=handoff.pk, notify=lambda *_: None)


def _carer_stopped(s):
    handoff = CarerHandoff.objects.create(subscriber=s, carer_email="tom@example.org", status="active")
    carers.carer_stop(handoff_id=handoff.pk, by="subscriber", source="preferences_page", notify=lambda *_: None)


def _emails_sent_and_queued(s):
    steps = list(s.series.steps.order_by("position"))
    Delivery.objects.create(subscriber=s, step=steps[0], status="sent", sent_at=NOW)
    Delivery.objects.create(subscriber=s, step=steps[1])


def _treatment_date(s):
    subscriber_services.subscriber_set_treatment_date(subscriber_id=s.pk, treatment_date=dt.date(2027, 1, 15))


STATES = {
    "active": lambda s: None, "pending": _pending, "paused": _paused, "paused-and-resumed": _paused_and_resumed,
    "unsubscribed": _unsubscribed, "suppressed": _suppressed, "carer-asked": _carer_asked,
    "carer-helping": _carer_helping, "carer-stopped": _carer_stopped, "emails": _emails_sent_and_queued,
    "treatment-date": _treatment_date,
}


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("state", STATES)
def test_the_readable_export_opens_in_every_state(client, state, language):
    with time_machine.travel(NOW, tick=False):
        subscriber = active_subscriber(
            "ana@example.org", series("recently_diagnosed", [(0, ["a1"]), (7, ["a2"])], language=language),
            first_name="Ana", time_zone="Europe/Madrid",
        )
        STATES[state](subscriber)
        page = export_page(client, subscriber)
    assert page.status_code == 200
    html = page.content.decode()
    assert "ana@example.org" in html
    for code in ("as_planned", "signup_page", "preferences_page", "2026-12-07T"):
        assert code not in html, code
    month = "diciembre" if language == "es" else "December"
    assert f"7 {'de ' if language == 'es' else ''}{month} {'de ' if language == 'es' else ''}2026" in html


def test_the_readable_export_speaks_plainly(client):
    with time_machine.travel(NOW, tick=False):
        subscriber = active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"])]), time_zone="Europe/Madrid")
        _paused_and_resumed(subscriber)
        html = export_page(client, subscriber).content.decode()
    assert "7 December 2026, 04:02" in html  # in their own time zone (UTC+1 in December)
    assert "Every few days (the usual pace)" in html and "Active" in html
    assert "your email choices page" in html


def test_the_json_download_keeps_the_codes(client):
    subscriber = active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"])]))
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    data = client.get(f"/preferences/{token}/export/").json()
    assert data["profile"]["cadence"] == "as_planned" and data["profile"]["status"] == "active"


def test_a_server_error_is_a_plain_page_in_both_languages():
    """Django's handler renders templates/500.html with no context: the page must stand alone."""
    from django.test import RequestFactory
    from django.views.defaults import server_error

    response = server_error(RequestFactory().get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "Sorry, something went wrong on our side" in body and "Nothing you did caused this" in body
    assert '<div lang="es">' in body and "Lo sentimos" in body
