import pytest
from django.core import mail
from django.urls import reverse

from nurture.models import ConsentRecord, Subscriber

pytestmark = pytest.mark.django_db

VALID = {"email": "Ana@Example.org", "first_name": "Ana", "stage": "in_treatment", "language": "es", "consent": "on"}


def test_signup_creates_pending_subscriber_and_sends_confirmation(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/", VALID)
    assert response.status_code == 302 and response["Location"] == reverse("nurture:signup_done")
    subscriber = Subscriber.objects.get()
    assert subscriber.status == "pending" and subscriber.stage == "in_treatment" and subscriber.language == "es"
    # The consent is recorded when they confirm from their inbox (tests/nurture/web/test_public_surface.py).
    assert ConsentRecord.objects.filter(subscriber=subscriber).count() == 0
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "/confirm/" in body
    assert "in_treatment" not in body and "in_treatment" not in mail.outbox[0].subject


def test_second_signup_same_address_any_case_makes_no_second_subscriber(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/", VALID)
        second = client.post("/", {**VALID, "email": "  ana@EXAMPLE.org"})
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Subscriber.objects.count() == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"stage": "cured"}, "stage"),
        ({"language": "fr"}, "language"),
        ({"consent": ""}, "consent"),
        ({"first_name": "x" * 101}, "first_name"),
        ({"email": ("a" * 250) + "@example.org"}, "email"),
    ],
)
def test_bad_input_rerenders_with_field_error_and_stores_nothing(client, change, field):
    data = {**VALID, **change}
    data = {k: v for k, v in data.items() if v != ""}
    response = client.post("/", data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Subscriber.objects.count() == 0
    assert b'class="errorlist"' in response.content


@pytest.mark.parametrize("time_zone", ["A" * 65, "Europe/London\x00", "Mars/Olympus"])
def test_an_odd_time_zone_is_utc_never_an_error_the_person_cannot_see(client, django_capture_on_commit_callbacks, time_zone):
    # The field is hidden and the page's script fills it only while empty: an error on it would be
    # a 400 with nothing highlighted, and the same 400 on every retry.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/", {**VALID, "time_zone": time_zone})
    assert response.status_code == 302
    assert Subscriber.objects.get().time_zone == "UTC"


def test_tampered_token_gets_plain_page(client):
    for url in ("/confirm/abc/", "/unsubscribe/abc:def/", "/preferences/zzz/"):
        response = client.get(url)
        assert response.status_code == 400
        assert b"This link does not work" in response.content
        assert reverse("nurture:signup").encode() in response.content


def test_expired_confirmation_token_says_so(client, settings):
    import time_machine
    from nurture import tokens

    subscriber = Subscriber.objects.create(email="b@example.org", stage="in_remission")
    with time_machine.travel("2026-01-01 12:00Z"):
        token = tokens.make_token(purpose=tokens.CONFIRM, subscriber_id=subscriber.pk)
    with time_machine.travel("2026-01-20 12:00Z"):
        response = client.get(f"/confirm/{token}/")
    assert response.status_code == 400 and b"expired" in response.content


def test_confirm_needs_a_post(client):
    from nurture import tokens

    subscriber = Subscriber.objects.create(email="c@example.org", stage="in_remission")
    token = tokens.make_token(purpose=tokens.CONFIRM, subscriber_id=subscriber.pk)
    assert client.get(f"/confirm/{token}/").status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"  # a mail scanner's GET confirms nothing
    client.post(f"/confirm/{token}/")
    subscriber.refresh_from_db()
    assert subscriber.status == "active" and subscriber.next_send_at is not None


@pytest.mark.parametrize("language, words", [("en", "allow cookies"), ("es", "Permita las cookies")])
def test_a_press_without_the_cookie_gets_a_plain_page_saying_what_to_do(language, words):
    # Cookies blocked in the browser: Django's technical English CSRF page (unstyled under the CSP)
    # would be all a person sees on pressing "confirm".
    from django.test import Client

    from nurture import tokens

    subscriber = Subscriber.objects.create(email="c@example.org", stage="in_remission")
    token = tokens.make_token(purpose=tokens.CONFIRM, subscriber_id=subscriber.pk)
    response = Client(enforce_csrf_checks=True).post(f"/confirm/{token}/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 403
    page = response.content.decode()
    assert words in page and "CSRF" not in page and "/static/nurture/site" in page
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"


def test_one_click_unsubscribe_post_without_csrf(client):
    from django.test import Client
    from nurture import tokens

    subscriber = Subscriber.objects.create(email="d@example.org", stage="in_remission", status="active")
    token = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed" and subscriber.next_send_at is None


def test_language_switch_shows_spanish_page_and_preselects_spanish(client):
    response = client.post("/i18n/setlang/", {"language": "es", "next": "/"})
    assert response.status_code == 302
    page = client.get("/")
    assert page.context["form"].initial["language"] == "es"
    assert b'lang="es"' in page.content


def test_signup_accepts_a_cross_site_post_without_csrf_token(django_capture_on_commit_callbacks):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = strict.post("/", VALID, HTTP_ORIGIN="https://www.cancer-org.example")
    assert response.status_code == 302
    assert Subscriber.objects.filter(email__iexact="ana@example.org", status="pending").exists()


def test_repeated_signups_do_not_flood_the_inbox(client, settings, django_capture_on_commit_callbacks):
    import time_machine

    settings.NURTURE_CONFIRM_RESEND_MINUTES = 10
    with time_machine.travel("2026-03-01 10:00Z", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(5):
                client.post("/", VALID)
    assert len(mail.outbox) == 1
    with time_machine.travel("2026-03-01 10:11Z", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/", VALID)
    assert len(mail.outbox) == 2
    assert Subscriber.objects.count() == 1


def test_local_outbox_page_lists_emails_only_in_debug(client, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "nurture.mail.OutboxEmailBackend"
    settings.NURTURE_OUTBOX_DIR = tmp_path / "outbox"
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/", VALID)
    settings.DEBUG = False
    assert client.get("/dev/outbox/").status_code == 404
    assert b"local outbox" not in client.get("/thanks/").content
    settings.DEBUG = True
    assert b"local outbox" in client.get("/thanks/").content
    listing = client.get("/dev/outbox/")
    assert listing.status_code == 200
    name = listing.context["messages_"][0]["name"]
    assert name.endswith(".eml")
    assert b"/confirm/" in client.get(f"/dev/outbox/{name}?part=text").content
    assert client.get("/dev/outbox/..%2Fsecrets.eml").status_code == 404


def test_signup_for_a_suppressed_address_stores_and_sends_nothing(client, django_capture_on_commit_callbacks):
    from nurture.models import Suppression

    Suppression.objects.create(email="ana@example.org", reason="hard bounce")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/", VALID)
    assert response.status_code == 302 and response["Location"] == reverse("nurture:signup_done")
    assert Subscriber.objects.count() == 0
    assert mail.outbox == []


def test_staff_adding_a_suppression_stops_the_subscriber(admin_client):
    from nurture.models import Suppression

    subscriber = Subscriber.objects.create(email="Kim@example.org", stage="in_remission", status="active")
    response = admin_client.post("/admin/nurture/suppression/add/", {"email": "kim@EXAMPLE.org", "reason": "asked by phone"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.status == "suppressed"
    assert Suppression.objects.count() == 1


def test_preference_centre_speaks_the_subscribers_language_with_sign_up_wording(client):
    from nurture import tokens

    subscriber = Subscriber.objects.create(email="p@example.org", stage="in_treatment", language="es", status="active")
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    page = client.get(f"/preferences/{token}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'lang="es"' in html
    assert "¿Con qué frecuencia desea recibir nuestros correos?" in html
    assert "---------" not in html  # no empty choice among the stage buttons
    response = client.post(f"/preferences/{token}/", {"action": "save", "first_name": "  Pía  ", "stage": "in_remission", "language": "es", "cadence": "weekly"})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert (subscriber.first_name, subscriber.stage, subscriber.cadence) == ("Pía", "in_remission", "weekly")
