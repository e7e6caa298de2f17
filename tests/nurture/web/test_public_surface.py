"""The public surface under attack, through the public interface with DEBUG off:
links that cannot be forged or mined, sign-up abuse, no overwrite before confirmation, identical
work for new and known addresses. (Webhook matching: tests/nurture/webhooks/test_matching.py;
the secret key check: tests/config/test_secret_key.py.) docs/security.md, "Public surface", maps
each threat to these tests."""
from __future__ import annotations

import base64
import re
import struct

import pytest
import time_machine
from django.core import mail, signing
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from nurture import tokens
from nurture.models import ConsentRecord, SignupRequest, Subscriber, Suppression
from nurture.services import signup as signup_services
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

FORM = {"email": "ana@example.org", "first_name": "Ana", "stage": "in_treatment", "language": "en", "consent": "on"}


@pytest.fixture(autouse=True)
def public_settings(settings):
    settings.DEBUG = False
    settings.NURTURE_SIGNUP_RATE = "20/h"
    settings.NURTURE_CONFIRM_RESEND_MINUTES = 10
    settings.NURTURE_SERVICE_EMAILS_PER_HOUR = 1000
    settings.CELERY_BROKER_URL = "filesystem://"  # in-process ceilings for these tests
    settings.NURTURE_SENDS_PER_SECOND = 1000.0
    cache.clear()
    yield
    cache.clear()


def sign_up(client, data=None, *, ip="198.51.100.7", **extra):
    return client.post("/", {**FORM, **(data or {})}, REMOTE_ADDR=ip, **extra)


def links_in(message) -> list[str]:
    return re.findall(r"https://guide\.example\.org(/[a-z]+/[^/\s\"<>]+/)", message.body)


def path_of(message, prefix: str) -> str:
    return next(link for link in links_in(message) if link.startswith(prefix))


# --- links that cannot be forged or mined -------------------------------------------------------

def test_tokens_carry_no_readable_id_and_are_bound_to_their_purpose():
    subscriber = Subscriber.objects.create(email="t@example.org", stage="in_remission", status="active")
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert struct.pack(">Q", subscriber.pk) not in raw and str(subscriber.pk).encode() not in raw
    assert tokens.read_token(purpose=tokens.PREFERENCES, token=token) == (subscriber.pk, "")
    for other in (tokens.UNSUBSCRIBE, tokens.VIEW_ONLINE, tokens.CONFIRM):
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_token(purpose=other, token=token)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_token(purpose=tokens.PREFERENCES, token=flipped)


def test_forged_and_old_format_tokens_open_nothing(client, settings):
    """The attack from the issue: with the development key, signing.dumps([1], ...) used to open #1."""
    subscriber = Subscriber.objects.create(email="victim@example.org", stage="in_treatment", status="active")
    old_format = signing.dumps([subscriber.pk], salt="nurture.preferences", compress=False)
    with_dev_key = signing.dumps([subscriber.pk], salt="nurture.preferences", key=settings.INSECURE_DEV_SECRET_KEY)
    for token in (old_format, with_dev_key, "1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        response = client.get(f"/preferences/{token}/")
        assert response.status_code == 400
        assert b"in_treatment" not in response.content and b"victim" not in response.content
    settings.SECRET_KEY = "another-key-" + "k" * 60  # a token made with any other key is a forgery
    forged = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    settings.SECRET_KEY = "the-real-key-" + "r" * 60
    assert client.get(f"/preferences/{forged}/").status_code == 400


def test_an_old_format_unsubscribe_link_still_unsubscribes_for_60_days_and_shows_nothing(client, settings):
    """Emails sent before the opaque tokens carry old-format unsubscribe links: nobody may lose their
    way out, so for LEGACY_UNSUBSCRIBE_DAYS such a link (made with a key the site holds) still works,
    for unsubscribing only."""
    subscriber = Subscriber.objects.create(email="early@example.org", stage="in_treatment", status="active")
    with time_machine.travel("2026-01-01 12:00Z", tick=False):
        legacy = signing.dumps([subscriber.pk], salt="nurture.unsubscribe", compress=False)
        other_key = signing.dumps([subscriber.pk], salt="nurture.unsubscribe", key="some-other-key-" + "x" * 50)
        legacy_preferences = signing.dumps([subscriber.pk], salt="nurture.preferences", compress=False)
    with time_machine.travel("2026-02-25 12:00Z", tick=False):  # 55 days later
        assert client.get(f"/unsubscribe/{other_key}/").status_code == 400
        assert client.get(f"/preferences/{legacy_preferences}/").status_code == 400
        page = client.get(f"/unsubscribe/{legacy}/")
        assert page.status_code == 200 and b"in_treatment" not in page.content
        assert client.post(f"/unsubscribe/{legacy}/").status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"
    with time_machine.travel("2026-03-03 12:00Z", tick=False):  # 61 days after it was made
        assert client.get(f"/unsubscribe/{legacy}/").status_code == 400


def test_key_rotation_keeps_links_made_with_the_previous_key(client, settings):
    subscriber = Subscriber.objects.create(email="r@example.org", stage="in_remission", status="active")
    settings.SECRET_KEY = "old-key-" + "o1" * 30
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-key-" + "n2" * 30, ["old-key-" + "o1" * 30]
    assert client.get(f"/preferences/{token}/").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(f"/preferences/{token}/").status_code == 400


def test_preference_links_expire_and_the_page_reveals_nothing_but_offers_new_links(client, django_capture_on_commit_callbacks):
    subscriber = Subscriber.objects.create(
        email="old@example.org", first_name="Olga", stage="in_treatment", status="active"
    )
    with time_machine.travel("2026-01-01 12:00Z", tick=False):
        token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    with time_machine.travel("2026-03-31 12:00Z", tick=False):  # day 89: still works
        assert client.get(f"/preferences/{token}/").status_code == 200
    with time_machine.travel("2026-04-02 12:00Z", tick=False):  # day 91: expired
        page = client.get(f"/preferences/{token}/")
        assert page.status_code == 400
        html = page.content.decode()
        for secret in ("Olga", "old@example.org", "in_treatment", "In treatment", "erase"):
            assert secret not in html
        assert f"/links/{token}/" in html  # "email me a new link"
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(f"/links/{token}/")
        assert answer.status_code == 200 and "old@example.org" not in answer.content.decode()
        assert [m.to for m in mail.outbox] == [["old@example.org"]]
        fresh = path_of(mail.outbox[0], "/preferences/")
        assert client.get(fresh).status_code == 200


def test_the_new_links_answer_is_the_same_for_any_link(client, django_capture_on_commit_callbacks):
    """Whether the link was ours or the person has left, the answer is one page: it reveals nothing."""
    active = Subscriber.objects.create(email="a@example.org", stage="in_remission", status="active")
    gone = Subscriber.objects.create(email="g@example.org", stage="in_remission", status="unsubscribed")
    with time_machine.travel("2026-01-01 12:00Z", tick=False):
        made = [tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=s.pk) for s in (active, gone)]
    with time_machine.travel("2026-05-01 12:00Z", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            answers = [client.post(f"/links/{token}/").content for token in [*made, "nonsense"]]
    assert answers[0] == answers[1] == answers[2]
    assert [m.to for m in mail.outbox] == [["a@example.org"]]  # only to someone who still gets emails


def test_unsubscribe_links_and_one_click_work_long_after_the_email(client):
    subscriber = Subscriber.objects.create(email="u@example.org", stage="in_remission", status="active")
    with time_machine.travel("2026-01-01 12:00Z", tick=False):
        token = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    with time_machine.travel("2027-01-01 12:00Z", tick=False):  # a year later: more than 60 days
        assert client.get(f"/unsubscribe/{token}/").status_code == 200
        strict = Client(enforce_csrf_checks=True)
        response = strict.post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"


def test_send_me_new_links_revokes_every_earlier_preference_and_view_link(client, django_capture_on_commit_callbacks):
    subscriber = Subscriber.objects.create(email="n@example.org", stage="in_remission", status="active")
    old = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    unsubscribe = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/preferences/{old}/", {"action": "new_links"})
    assert response.status_code == 200
    assert client.get(f"/preferences/{old}/").status_code == 400
    assert len(mail.outbox) == 1
    assert client.get(path_of(mail.outbox[0], "/preferences/")).status_code == 200
    assert client.get(f"/unsubscribe/{unsubscribe}/").status_code == 200  # still stops emails


def test_erase_revokes_every_link(client):
    from nurture.services import retention

    subscriber = Subscriber.objects.create(email="e@example.org", stage="in_remission", status="active")
    made = {p: tokens.make_token(purpose=p, subscriber_id=subscriber.pk) for p in (tokens.PREFERENCES, tokens.UNSUBSCRIBE)}
    retention.subscriber_erase(subscriber_id=subscriber.pk)
    assert client.get(f"/preferences/{made[tokens.PREFERENCES]}/").status_code == 400
    assert client.get(f"/unsubscribe/{made[tokens.UNSUBSCRIBE]}/").status_code == 400


def test_the_view_in_browser_page_mints_no_preference_or_erase_link(client):
    from nurture.models import Delivery

    the_series = series("in_treatment", [(0, ["web-copy"])])
    subscriber = active_subscriber("w@example.org", the_series)
    delivery = Delivery.objects.create(subscriber=subscriber, step=the_series.steps.get(), status="sent")
    token = tokens.make_token(purpose=tokens.VIEW_ONLINE, subscriber_id=subscriber.pk, extra=str(delivery.pk))
    page = client.get(f"/email/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/preferences/" not in html and "erase" not in html
    assert f"/links/{token}/" in html  # "manage your emails" asks for a link by email instead


def test_tokens_never_reach_the_log(client):
    """Django's "Bad Request" warning and access-log lines, through the handlers LOGGING configures."""
    import io
    import logging

    stream = io.StringIO()
    def configured(name):  # the handlers from LOGGING (pytest adds capturing handlers of its own)
        return {h for h in logging.getLogger(name).handlers if any(type(f).__name__ == "RedactPersonalData" for f in h.filters)}

    handlers = configured(None) | configured("django") | configured("django.server")
    assert configured(None) and configured("django") and configured("django.server")
    previous = {h: h.setStream(stream) for h in handlers}
    subscriber = Subscriber.objects.create(email="l@example.org", stage="in_remission", status="active")
    token = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    client.raise_request_exception = False
    client.get("/preferences/not-a-real-token-abc/")
    client.get(f"/confirm/{token}/")  # a genuine token for the wrong purpose: 400, logged
    logging.getLogger("gunicorn.access").info('%s "%s" %s', "192.0.2.1", f"GET /unsubscribe/{token}/ HTTP/1.1", 200)
    logging.getLogger("django.server").info('"GET /email/%s/?x=1 HTTP/1.1" 200 512', token)
    for handler, old_stream in previous.items():
        handler.setStream(old_stream)
    logged = stream.getvalue()
    assert "Bad Request: /preferences/[token]/" in logged
    assert "/unsubscribe/[token]/" in logged and "/email/[token]/" in logged
    assert token not in logged and "not-a-real-token-abc" not in logged


# --- sign-up abuse ---------------------------------------------------------------------------------

def test_signup_rate_limit_per_client_address_answers_429_with_when_to_retry(client, settings):
    settings.NURTURE_SIGNUP_RATE = "3/h"
    for n in range(3):
        assert sign_up(client, {"email": f"r{n}@example.org"}).status_code == 302
    refused = sign_up(client, {"email": "r9@example.org", "language": "es"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    html = refused.content.decode()
    assert 'lang="es"' in html and "Inténtelo de nuevo" in html
    assert SignupRequest.objects.filter(email="r9@example.org").count() == 0
    assert sign_up(client, {"email": "r9@example.org"}, ip="203.0.113.9").status_code == 302  # another client


def test_a_forwarded_for_header_counts_only_when_the_proxy_is_trusted(client, settings):
    settings.NURTURE_SIGNUP_RATE = "2/h"
    for n in range(2):
        sign_up(client, {"email": f"x{n}@example.org"}, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    # Untrusted: the header is anyone's to write, so rotating it does not escape the limit.
    assert sign_up(client, {"email": "x9@example.org"}, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    settings.NURTURE_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    cache.clear()
    for n in range(2):  # behind our proxy every request comes from its address; the header's last entry counts
        assert sign_up(client, {"email": f"y{n}@example.org"}, ip="10.0.0.1", HTTP_X_FORWARDED_FOR=f"spoof-{n}, 192.0.2.0").status_code == 302
    assert sign_up(client, {"email": "y2@example.org"}, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.0").status_code == 429
    assert sign_up(client, {"email": "y3@example.org"}, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.0, 192.0.2.5").status_code == 302


def test_the_honeypot_gets_the_success_page_and_stores_and_sends_nothing(client, django_capture_on_commit_callbacks):
    page = client.get("/")
    assert b'name="website"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client, {"website": "http://spam.example"})
    assert response.status_code == 302 and response["Location"] == "/thanks/"
    assert not SignupRequest.objects.exists() and not Subscriber.objects.exists() and mail.outbox == []


def test_plus_and_dot_variants_of_one_mailbox_get_one_email(client, django_capture_on_commit_callbacks):
    variants = [f"victim+{n}@gmail.com" for n in range(12)] + ["v.i.c.t.i.m@gmail.com", "Vic.Tim@googlemail.com", "victim@gmail.com"]
    with django_capture_on_commit_callbacks(execute=True):
        for n, address in enumerate(variants):
            assert sign_up(client, {"email": address}, ip=f"198.51.100.{n}").status_code == 302
    assert len(mail.outbox) == 1
    assert Subscriber.objects.count() == 1 and not SignupRequest.objects.filter(subscriber=None).exists()


def test_hourly_ceiling_accepts_signups_but_their_confirmation_waits(client, settings, django_capture_on_commit_callbacks):
    settings.NURTURE_SERVICE_EMAILS_PER_HOUR = 2
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            assert sign_up(client, {"email": f"c{n}@example.org"}).status_code == 302
    assert len(mail.outbox) == 2
    waiting = SignupRequest.objects.get(emailed_at=None)
    assert waiting.state == "confirm" and waiting.subscriber.status == "pending"
    outcome = signup_services.signup_request_email(request_id=waiting.pk)
    assert not outcome.sent and 0 < outcome.retry_in <= 3600
    import time

    with time_machine.travel(time.time() + 61 * 60, tick=False):  # an hour later there is room
        assert signup_services.signup_request_email(request_id=waiting.pk).sent
    assert len(mail.outbox) == 3


def test_confirmation_emails_take_a_provider_send_slot(client, monkeypatch, django_capture_on_commit_callbacks):
    from nurture.services import throttle

    taken = []
    monkeypatch.setattr(throttle, "wait_for_send_slot", lambda: taken.append(1) or 0.0)
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client)
    assert len(mail.outbox) == 1 and taken == [1]


@pytest.mark.parametrize(
    "name, ok",
    [
        ("Ana", True), ("José-María O'Neil", True), ("Zoë", True), ("李小龍", True), ("محمد", True), ("देवनागरी", True),
        ("Hello please re-verify your bank at http://evil.example/login now", False),
        ("Ana2", False), ("www.evil.example", False), ("<b>Ana</b>", False), ("Ana_", False), ("-", False),
    ],
)
def test_first_name_takes_letters_spaces_hyphens_and_apostrophes_only(client, name, ok):
    response = sign_up(client, {"first_name": name})
    assert response.status_code == (302 if ok else 400)
    if not ok:
        assert "first_name" in response.context["form"].errors
        assert not SignupRequest.objects.exists()


# --- no overwrite before confirmation ----------------------------------------------------------

@pytest.mark.parametrize("status", ["pending", "unsubscribed"])
def test_a_new_signup_changes_nothing_until_confirmed(client, status, django_capture_on_commit_callbacks):
    person = Subscriber.objects.create(
        email="held@example.org", first_name="Rosa", stage="in_remission", language="en", status=status
    )
    old_link = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=person.pk)
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, {"email": "HELD@example.org", "first_name": "Mallory", "stage": "recently_diagnosed", "language": "es"})
    person.refresh_from_db()
    assert (person.first_name, person.stage, person.language, person.status) == ("Rosa", "in_remission", "en", status)
    assert not ConsentRecord.objects.filter(subscriber=person).exists()
    if status == "unsubscribed":  # their old link shows what they chose, not the stranger's choice
        page = client.get(f"/preferences/{old_link}/")
        assert page.context["subscriber"].stage == "in_remission"
    # The email goes to the address we hold; confirming from it applies the new choices.
    assert [m.to for m in mail.outbox] == [["held@example.org"]]
    confirm = path_of(mail.outbox[0], "/confirm/")
    assert b'type="submit"' in client.get(confirm).content  # the one-button page, also for someone who left
    assert client.post(confirm).status_code == 200
    person.refresh_from_db()
    assert (person.first_name, person.stage, person.language, person.status) == ("Mallory", "recently_diagnosed", "es", "active")
    assert ConsentRecord.objects.get(subscriber=person, kind="signup").confirmed_at is not None
    assert not SignupRequest.objects.exists()


def test_an_active_subscriber_signing_up_again_gets_their_preference_link(client, django_capture_on_commit_callbacks):
    person = Subscriber.objects.create(email="on@example.org", first_name="Ina", stage="in_remission", status="active")
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, {"email": "on@example.org", "first_name": "Eve", "stage": "in_treatment"})
        sign_up(client, {"email": "on@example.org", "first_name": "Eve", "stage": "in_treatment"})  # throttled
    person.refresh_from_db()
    assert (person.first_name, person.stage, person.status) == ("Ina", "in_remission", "active")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["on@example.org"] and "already" in message.subject.lower()
    assert "/confirm/" not in message.body and "Eve" not in message.body
    assert client.get(path_of(message, "/preferences/")).status_code == 200
    assert not SignupRequest.objects.exists()


def test_a_superseded_confirmation_link_applies_nothing(client, settings, django_capture_on_commit_callbacks):
    settings.NURTURE_CONFIRM_RESEND_MINUTES = 0
    person = Subscriber.objects.create(email="two@example.org", stage="in_remission", status="unsubscribed")
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, {"email": "two@example.org", "stage": "recently_diagnosed"})
        sign_up(client, {"email": "two@example.org", "stage": "in_treatment"})
    first, second = (path_of(m, "/confirm/") for m in mail.outbox)
    client.post(second)
    stale = client.post(first)  # the other sign-up's link: it no longer applies anything, and says so
    assert b'type="submit"' not in stale.content and b"already signed up" in stale.content
    person.refresh_from_db()
    assert (person.stage, person.status) == ("in_treatment", "active")


def test_a_suppressed_address_stores_and_sends_nothing(client, django_capture_on_commit_callbacks):
    Suppression.objects.create(email="ana@example.org", reason="hard bounce")
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_up(client).status_code == 302
    assert not Subscriber.objects.exists() and not SignupRequest.objects.exists() and mail.outbox == []


# --- the same work for a new and a known address -------------------------------------------------

def test_new_and_known_addresses_get_identical_responses_for_identical_work(client):
    Subscriber.objects.create(email="known@example.org", stage="in_remission", status="active")

    def measured(address):
        with CaptureQueriesContext(connection) as queries:
            response = sign_up(client, {"email": address})
        tables = [re.findall(r'(?:FROM|INTO|UPDATE) "(\w+)"', q["sql"]) for q in queries.captured_queries]
        return response, tables

    new, new_tables = measured("new@example.org")
    known, known_tables = measured("known@example.org")
    assert (new.status_code, new["Location"], new.content) == (known.status_code, known["Location"], known.content)
    assert sorted(new.headers) == sorted(known.headers)
    # The form's work never looks at subscribers: one insert of the request, whatever the address.
    assert new_tables == known_tables
    assert not any("nurture_subscriber" in table for tables in new_tables for table in tables)


def test_refusals_are_plain_pages_in_the_persons_language(client):
    bad = sign_up(client, {"email": "not-an-email", "language": "es"}, HTTP_ACCEPT_LANGUAGE="es")
    assert bad.status_code == 400 and 'lang="es"' in bad.content.decode()
    assert 'class="errorlist"' in bad.content.decode()
