"""One mailbox, one identity: addresses are refused when quoted or
IP-literal, written with a lower-case domain, and compared as the mailbox they reach, so an erased
or suppressed mailbox gets nothing under any spelling and one mailbox cannot be flooded through
many spellings."""
from __future__ import annotations

import pytest
from django.core import mail
from django.utils import translation

from nurture import tasks
from nurture.addresses import address_normalise, mailbox_of
from nurture.models import ConsentRecord, SignupRequest, Subscriber, Suppression
from nurture.selectors.subscribers import is_suppressed, suppressed_among
from nurture.services import retention, signup
from nurture.services.suppression import address_suppress
from nurture.web.forms import CarerForm, SignupForm
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

VALID = {"email": "ana@example.org", "first_name": "Ana", "stage": "in_treatment", "language": "en", "consent": "on"}
REFUSED = ['"gone"@example.org', '"b\\omb"@example.org', '"\\bomb"@example.org', "ana@[192.0.2.1]", "ana@[IPv6:2001:db8::1]", "ana@localhost"]


@pytest.mark.parametrize("address", REFUSED)
def test_the_signup_form_refuses_quoted_and_ip_literal_addresses_with_a_clear_error(client, address):
    response = client.post("/", {**VALID, "email": address})
    assert response.status_code == 400
    assert "Please enter a plain email address" in str(response.context["form"].errors["email"])
    assert not SignupRequest.objects.exists() and not Subscriber.objects.exists()


def test_the_error_is_in_spanish_on_the_spanish_page():
    with translation.override("es"):
        form = SignupForm(data={**VALID, "email": '"gone"@example.org'})
        assert not form.is_valid()
        assert "Escriba una dirección de correo sencilla" in str(form.errors["email"])


@pytest.mark.parametrize("address", REFUSED)
def test_the_carer_address_field_refuses_them_too(address):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    form = CarerForm(data={"carer_email": address, "mode": "as_well"}, subscriber=subscriber)
    assert not form.is_valid()
    assert "Please enter a plain email address" in str(form.errors["carer_email"])


def test_the_domain_is_written_in_lower_case_and_the_local_part_as_typed(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/", {**VALID, "email": " Ana.Perez+news@EXAMPLE.Org "}).status_code == 302
    assert Subscriber.objects.get().email == "Ana.Perez+news@example.org"
    assert address_normalise("ana@BÜCHER.de") == "ana@xn--bcher-kva.de"


def test_the_carer_form_sees_the_subscribers_own_mailbox_under_another_spelling():
    subscriber = active_subscriber("ana.perez@example.org", series("in_treatment", [(0, ["a1"])]))
    form = CarerForm(data={"carer_email": "AnaPerez+help@Example.org", "mode": "as_well"}, subscriber=subscriber)
    assert not form.is_valid() and "your own address" in str(form.errors["carer_email"])


@pytest.mark.parametrize(
    "spelling",
    ["gone@example.org", "Gone@EXAMPLE.org", "gone+again@example.org", "g.o.n.e@example.org", '"gone"@example.org',
     '"g\\one"@example.org', "gone@example.org."],
)
def test_every_spelling_reaches_one_mailbox(spelling):
    assert mailbox_of(spelling) == "gone@example.org"
    assert mailbox_of("gone@googlemail.com") == mailbox_of("g.one+x@gmail.com")
    assert mailbox_of("gone@example.org") != mailbox_of("gone@example.net")


def _sign_up(email, django_capture_on_commit_callbacks):
    """The worker's half of a sign-up, for spellings the form no longer lets through (rows stored
    before it refused them, or another way in)."""
    with django_capture_on_commit_callbacks(execute=True):
        signup.signup_request_store(
            email=email, first_name="", stage="in_treatment", language="en", time_zone="UTC", consent_text="yes",
            enqueue=tasks.enqueue_signup,
        )


def test_an_erased_mailbox_gets_nothing_under_any_spelling(django_capture_on_commit_callbacks):
    gone = active_subscriber("gone@example.org", series("in_treatment", [(0, ["a1"])]))
    retention.subscriber_erase(subscriber_id=gone.pk)
    for spelling in ["gone+again@example.org", '"gone"@example.org', "G.one@Example.org", "gone@EXAMPLE.ORG"]:
        _sign_up(spelling, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert not Subscriber.objects.exists()


def test_one_mailbox_gets_one_signup_email_whatever_the_spelling(django_capture_on_commit_callbacks, settings):
    settings.NURTURE_CONFIRM_RESEND_MINUTES = 10
    for spelling in ['"bomb"@example.org', '"b\\omb"@example.org', '"\\bomb"@example.org', "bomb+1@example.org", "b.omb@example.org"]:
        _sign_up(spelling, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1


def test_a_bounce_on_one_spelling_suppresses_the_mailbox_and_every_subscriber_using_it():
    the_series = series("in_treatment", [(0, ["a1"])])
    base = active_subscriber("ann@example.org", the_series)
    tagged = active_subscriber("Ann+news@example.org", the_series)
    other = active_subscriber("anne@example.org", the_series)
    assert address_suppress(email="ANN@example.org", reason="hard bounce (test)", source="bounce")
    # One row per suppressed spelling, each with the mailbox (retention finds a subscriber's by their address).
    assert set(Suppression.objects.values_list("email", "mailbox")) == {
        ("ANN@example.org", "ann@example.org"), ("Ann+news@example.org", "ann@example.org")
    }
    statuses = dict(Subscriber.objects.values_list("pk", "status"))
    assert statuses == {base.pk: "suppressed", tagged.pk: "suppressed", other.pk: "active"}
    assert ConsentRecord.objects.filter(kind="suppressed", source="bounce").count() == 2
    assert is_suppressed(email='"ann"@example.org') and is_suppressed(email="a.n.n+x@example.org")
    assert suppressed_among(emails=["Ann+Other@example.org", "anne@example.org"]) == {"ann+other@example.org"}


def test_a_subscriber_stopped_under_another_spelling_is_purged_with_the_others(settings):
    """Retention finds a suppressed subscriber's suppression by their own address: a subscriber
    stopped because another spelling of their mailbox bounced must not be kept for ever."""
    import datetime as dt

    import time_machine

    the_series = series("in_treatment", [(0, ["a1"])])
    tagged = active_subscriber("ann+news@example.org", the_series)
    address_suppress(email="ann@example.org", reason="hard bounce (test)", source="bounce")
    assert Subscriber.objects.get(pk=tagged.pk).status == "suppressed"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS + 1)
    with time_machine.travel(later, tick=False):
        assert tagged.pk in set(retention.expired_suppressed_subscribers(now=later).values_list("pk", flat=True))
