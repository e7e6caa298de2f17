"""The care features through the public pages (test client): pause link, preference-centre actions,
the carer's links, "Download my data", the treatment date at sign-up; bad input gives the field's
error in the person's language and changes nothing."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core import mail
from django.utils import timezone

from nurture import tokens
from nurture.models import CarerHandoff, ConsentRecord, SignupRequest, Subscriber, Suppression
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


def prefs_url(subscriber) -> str:
    return f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"


def pause_url(subscriber) -> str:
    return f"/pause/{tokens.make_token(purpose=tokens.PAUSE, subscriber_id=subscriber.pk)}/"


@pytest.fixture
def ana():
    return active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"])]), first_name="Ana")


@pytest.fixture
def sofia():
    return active_subscriber("sofia@example.org", series("recently_diagnosed", [(0, ["a1"])], language="es"), first_name="Sofía")


def test_pause_link_get_shows_the_choice_and_changes_nothing(client, ana):
    page = client.get(pause_url(ana))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="weeks"' in html and "2 weeks" in html and "1 month" in html and "3 months" in html
    assert Subscriber.objects.get(pk=ana.pk).status == "active"
    assert page["Cache-Control"] == "private, no-store"


def test_pause_link_post_pauses_for_the_length_chosen(client, ana):
    page = client.post(pause_url(ana), {"weeks": "13"})
    assert page.status_code == 200 and "Your emails are paused" in page.content.decode()
    ana.refresh_from_db()
    assert ana.status == "paused" and ana.paused_until > timezone.now() + dt.timedelta(weeks=12)


@pytest.mark.parametrize("weeks", ["3", "", "two", "-2", "1000000000000000000000"])
def test_pause_length_not_offered_is_a_field_error_in_their_language(client, sofia, weeks):
    page = client.post(pause_url(sofia), {"weeks": weeks})
    assert page.status_code == 400
    expected = "Elija cuánto tiempo quiere descansar." if weeks == "" else "Elija uno de los tiempos de pausa que ofrecemos."
    assert expected in page.content.decode()
    sofia.refresh_from_db()
    assert sofia.status == "active" and not ConsentRecord.objects.exists()


def test_bad_pause_link_is_the_plain_page(client):
    assert client.get("/pause/not-a-token/").status_code == 400
    assert client.post("/pause/not-a-token/", {"weeks": "2"}).status_code == 400


def test_a_preference_link_does_not_open_the_pause_page(client, ana):
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)
    assert client.post(f"/pause/{token}/", {"weeks": "2"}).status_code == 400
    assert Subscriber.objects.get(pk=ana.pk).status == "active"


def test_preference_centre_shows_the_pause_and_ends_it_early(client, ana):
    client.post(pause_url(ana), {"weeks": "4"})
    html = client.get(prefs_url(ana)).content.decode()
    assert "Your emails are paused until" in html and 'value="resume"' in html
    client.post(prefs_url(ana), {"action": "resume"})
    ana.refresh_from_db()
    assert ana.status == "active" and ana.paused_until is None and ana.welcome_back_due


def test_treatment_date_in_the_preference_centre_and_its_bad_input(client, sofia):
    url = prefs_url(sofia)
    for bad, message in [
        ((timezone.localdate() - dt.timedelta(days=1)).isoformat(), "La fecha no puede ser anterior a hoy."),
        ((timezone.localdate() + dt.timedelta(days=400)).isoformat(), "La fecha debe estar dentro del próximo año."),
        ("15/03/2027", "Escriba una fecha, por ejemplo 2027-03-15."),
    ]:
        page = client.post(url, {"action": "treatment_date", "treatment_date": bad})
        assert page.status_code == 400 and message in page.content.decode()
    sofia.refresh_from_db()
    assert sofia.treatment_date is None and not ConsentRecord.objects.exists()
    when = timezone.localdate() + dt.timedelta(days=21)
    assert client.post(url, {"action": "treatment_date", "treatment_date": when.isoformat()}).status_code == 200
    sofia.refresh_from_db()
    assert sofia.treatment_date == when
    assert client.post(url, {"action": "treatment_date_remove"}).status_code == 200
    sofia.refresh_from_db()
    assert sofia.treatment_date is None
    assert list(ConsentRecord.objects.values_list("kind", "source")) == [
        ("treatment_date_given", "preferences_page"), ("treatment_date_removed", "preferences_page")
    ]


@pytest.mark.parametrize("address, message", [
    ("SOFIA@example.org", "Esta es su propia dirección."),
    ("not-an-address", "Escriba una dirección de correo electrónico como nombre@ejemplo.org."),
])
def test_carer_bad_input_is_a_field_error_in_their_language(client, sofia, address, message):
    Suppression.objects.create(email="gone@example.org", reason="bounced")
    page = client.post(prefs_url(sofia), {"action": "carer", "carer_email": address, "mode": "instead"})
    assert page.status_code == 400 and message in page.content.decode()
    assert not CarerHandoff.objects.exists() and not ConsentRecord.objects.exists() and not mail.outbox


def test_carer_request_sends_the_carer_a_stage_free_email_and_waits(client, ana, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(prefs_url(ana), {"action": "carer", "carer_email": "tom@example.org", "mode": "as_well"})
    assert page.status_code == 200 and "We asked tom@example.org to confirm" in page.content.decode()
    [ask] = [m for m in mail.outbox if m.to == ["tom@example.org"]]
    [told] = [m for m in mail.outbox if m.to == ["ana@example.org"]]  # the subscriber is told at once
    assert "/carer/cancel/" in told.body
    body = ask.body + ask.alternatives[0][0]
    assert "Ana asked us" in body and "information about getting a second opinion" in body
    assert "ana@example.org" not in body  # no subscriber address in the carer's email
    assert "recently" not in body.lower() and "diagnos" not in body.lower() and "recently" not in ask.subject.lower()
    handoff = CarerHandoff.objects.get()
    assert handoff.status == "pending"
    # The carer's links: GET changes nothing, POST agrees; their stop link stops it.
    # The link in the email (a token made when it was sent) is the carer-confirm link for this hand-off.
    [token] = set(re.findall(r"/carer/confirm/([A-Za-z0-9_-]+)/", body))
    assert tokens.read_token(purpose=tokens.CARER_CONFIRM, token=token) == (ana.pk, str(handoff.pk))
    confirm = f"/carer/confirm/{token}/"
    assert client.get(confirm).status_code == 200
    handoff.refresh_from_db()
    assert handoff.status == "pending"
    assert client.post(confirm).status_code == 200
    handoff.refresh_from_db()
    assert handoff.status == "active"
    stop = f"/carer/stop/{tokens.make_token(purpose=tokens.CARER_STOP, subscriber_id=ana.pk, extra=str(handoff.pk))}/"
    assert client.post(stop).status_code == 200
    handoff.refresh_from_db()
    assert handoff.status == "stopped" and handoff.stopped_by == "carer"
    assert list(ConsentRecord.objects.values_list("kind", "source")) == [
        ("carer_requested", "preferences_page"), ("carer_confirmed", "carer_link"), ("carer_stopped", "carer_link")
    ]


def test_a_carer_link_for_another_subscriber_is_refused(client, ana, sofia):
    handoff = CarerHandoff.objects.create(subscriber=sofia, carer_email="tom@example.org")
    forged = tokens.make_token(purpose=tokens.CARER_CONFIRM, subscriber_id=ana.pk, extra=str(handoff.pk))
    assert client.post(f"/carer/confirm/{forged}/").status_code == 400
    wrong_purpose = tokens.make_token(purpose=tokens.CARER_STOP, subscriber_id=sofia.pk, extra=str(handoff.pk))
    assert client.post(f"/carer/confirm/{wrong_purpose}/").status_code == 400
    handoff.refresh_from_db()
    assert handoff.status == "pending"


def test_subscriber_stops_the_hand_off_from_the_preference_centre(client, ana):
    CarerHandoff.objects.create(subscriber=ana, carer_email="tom@example.org", status="active")
    assert "Your emails also go to" not in client.get(prefs_url(ana)).content.decode()  # mode instead
    client.post(prefs_url(ana), {"action": "carer_stop"})
    handoff = CarerHandoff.objects.get()
    assert handoff.status == "stopped" and handoff.stopped_by == "subscriber"


def test_download_my_data_json_and_readable_page(client, ana):
    client.post(pause_url(ana), {"weeks": "2"})
    response = client.get(f"{prefs_url(ana)}export/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert response["Cache-Control"] == "private, no-store"
    data = json.loads(response.content)
    assert data["profile"]["email"] == "ana@example.org" and data["pauses"][0]["source"] == "pause_link"
    page = client.get(f"{prefs_url(ana)}export/", {"format": "html"})
    assert page.status_code == 200 and "Everything we hold about you" in page.content.decode()
    assert client.get("/preferences/bad/export/").status_code == 400


def test_sign_up_with_a_treatment_date_and_its_bad_input(client):
    base = {"email": "new@example.org", "stage": "recently_diagnosed", "language": "es", "consent": "on"}
    past = (timezone.localdate() - dt.timedelta(days=3)).isoformat()
    page = client.post("/", {**base, "treatment_date": past})
    assert page.status_code == 400 and "treatment_date" in page.context["form"].errors
    assert not SignupRequest.objects.exists() and not Subscriber.objects.exists()
    when = timezone.localdate() + dt.timedelta(days=40)
    assert client.post("/", {**base, "treatment_date": when.isoformat()}).status_code == 302
    assert SignupRequest.objects.get().treatment_date == when  # applied when they confirm
    assert client.post("/", {**base, "email": "x@example.org"}).status_code == 302  # optional


def test_every_series_email_has_the_pause_link(client, ana):
    from nurture.emails.messages import build_delivery_email
    from nurture.models import Delivery

    delivery = Delivery.objects.create(subscriber=ana, step=ana.series.steps.get())
    message = build_delivery_email(delivery)
    assert "/pause/" in message.body and "Pause these emails" in message.body
    assert "Pause these emails" in message.alternatives[0][0]
