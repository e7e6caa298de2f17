"""The confirm page shows the choices that will apply and lets the person change them:
a sign-up posted first by someone else with their address never applies unseen. GET
changes nothing (mail scanners); POST confirms with the chosen values; a bad value is a 400 with the
field's error and confirms nothing; in English and Spanish."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from nurture import tokens
from nurture.models import ConsentRecord, SignupRequest, Subscriber
from tests.helpers.scheduler import series

pytestmark = pytest.mark.django_db


def impostors_sign_up(*, language: str = "en", stage: str = "recently_diagnosed", treatment_date=None) -> tuple[Subscriber, str]:
    """What someone else posted with the victim's address: their stage, name, language, zone and date."""
    subscriber = Subscriber.objects.create(email="victim@example.org", first_name="Mallory", stage=stage, language=language,
                                           time_zone="Pacific/Auckland")
    request = SignupRequest.objects.create(
        email=subscriber.email, first_name="Mallory", stage=stage, language=language, time_zone="Pacific/Auckland",
        consent_text="I agree.", treatment_date=treatment_date, state=SignupRequest.State.CONFIRM, subscriber=subscriber,
    )
    token = tokens.make_token(purpose=tokens.CONFIRM, subscriber_id=subscriber.pk, extra=str(request.pk))
    return subscriber, f"/confirm/{token}/"


@pytest.fixture
def soon() -> date:
    return timezone.localdate() + timedelta(days=20)


@pytest.fixture(autouse=True)
def _series():
    for stage in ("recently_diagnosed", "in_treatment", "in_remission"):
        for language in ("en", "es"):
            series(stage, [(0, [f"{stage}-{language}"])], language=language)


def test_the_page_shows_every_choice_and_changes_nothing(client, soon):
    subscriber, url = impostors_sign_up(treatment_date=soon)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Mallory"' in html
    checked = re.findall(r'<input type="radio" name="stage" value="([a-z_]+)"[^>]*\bchecked\b', html)
    assert checked == ["recently_diagnosed"]
    assert f'value="{soon.isoformat()}"' in html
    assert '<option value="Pacific/Auckland" selected>' in html
    assert '<option value="en" selected>' in html
    assert "Yes, start my emails" in html
    subscriber.refresh_from_db()
    assert subscriber.status == "pending" and not ConsentRecord.objects.exists()  # a scanner's GET confirms nothing


def test_the_person_changes_the_choices_and_only_theirs_apply(client, soon):
    subscriber, url = impostors_sign_up(treatment_date=soon)
    response = client.post(url, {"first_name": "Ana", "stage": "in_remission", "language": "es",
                                 "time_zone": "Europe/Madrid", "treatment_date": soon.isoformat()})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert (subscriber.first_name, subscriber.stage, subscriber.language, subscriber.time_zone) == (
        "Ana", "in_remission", "es", "Europe/Madrid")
    assert subscriber.treatment_date is None  # kept only for the stage it plans
    assert subscriber.series.stage == "in_remission" and subscriber.series.language == "es"
    assert "Mallory" not in Subscriber.objects.values_list("first_name", flat=True)
    assert not SignupRequest.objects.exists()  # applied: the impostor's request is gone


def test_a_treatment_date_can_be_added_or_cleared_on_the_confirm_page(client, soon):
    subscriber, url = impostors_sign_up(treatment_date=soon)
    fields = {"first_name": "", "stage": "recently_diagnosed", "language": "en", "time_zone": "UTC", "treatment_date": ""}
    assert client.post(url, fields).status_code == 200
    subscriber.refresh_from_db()
    assert (subscriber.treatment_date, subscriber.first_name, subscriber.time_zone) == (None, "", "UTC")


def test_a_post_with_the_button_alone_confirms_the_choices_shown(client):
    subscriber, url = impostors_sign_up(stage="in_treatment")
    assert client.post(url).status_code == 200
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.stage, subscriber.time_zone) == ("active", "in_treatment", "Pacific/Auckland")


@pytest.mark.parametrize("field, value", [
    ("stage", "terminal"),
    ("language", "fr"),
    ("time_zone", "Mars/Olympus_Mons"),
    ("time_zone", "x" * 5000),
    ("first_name", "Visit https://evil.example"),
    ("treatment_date", "2001-01-01"),
    ("treatment_date", "soon"),
    ("treatment_date", "9999-99-99"),
])
def test_a_bad_value_is_a_400_with_the_fields_error_and_confirms_nothing(client, field, value):
    subscriber, url = impostors_sign_up()
    fields = {"first_name": "Ana", "stage": "recently_diagnosed", "language": "en", "time_zone": "UTC", "treatment_date": ""}
    response = client.post(url, {**fields, field: value})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html and "Please check the highlighted answers below." in html
    assert "x" * 100 not in html  # a junk value is not echoed back in an error
    subscriber.refresh_from_db()
    assert subscriber.status == "pending" and subscriber.first_name == "Mallory"
    assert SignupRequest.objects.filter(subscriber=subscriber).exists() and not ConsentRecord.objects.exists()


def test_in_spanish(client):
    subscriber, url = impostors_sign_up(language="es", stage="in_treatment")
    html = client.get(url).content.decode()
    assert 'lang="es"' in html
    assert "Su zona horaria" in html and "Estas son las opciones que seguirán sus correos" in html
    response = client.post(url, {"first_name": "Ana", "stage": "in_treatment", "language": "es", "time_zone": "Nowhere/Land"})
    assert response.status_code == 400
    assert "Elija una de las opciones que se muestran." in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"


def test_a_used_link_shows_no_choices(client):
    subscriber, url = impostors_sign_up(stage="in_treatment")
    client.post(url)
    html = client.get(url).content.decode()
    assert "Mallory" not in html and "Pacific/Auckland" not in html
    assert client.post(url, {"stage": "in_remission"}).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.stage == "in_treatment"  # nothing changes through a used link
