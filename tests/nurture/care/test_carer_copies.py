"""The carer hand-off: every address gets its own message, built for it, and the subscriber
is always told and stays in charge.

- a carer's copy is its own Delivery (own Message-ID, one To), greets the carer, names the
  subscriber by first name only, and carries only carer-scoped links: decoding every link and
  header finds none that opens the subscriber's record;
- one-click on the carer's List-Unsubscribe ends the hand-off only; the subscriber stays active;
- a carer's bounce or complaint suppresses the carer's address only and ends the hand-off;
- the subscriber is emailed on request (with a cancel link), when it comes into force, and when it
  stops; "instead of me" waits for the subscriber's own confirmation; "send me new links" ends it;
- a per-subscriber cap on requests, a separate hourly ceiling and queue for carer emails, and the
  same answer whatever address is named."""
from __future__ import annotations

import re
from email.utils import getaddresses
from urllib.parse import urlsplit

import pytest
from anymail.signals import AnymailTrackingEvent
from django.core import mail
from django.test import Client

from nurture import tokens
from nurture.models import CarerHandoff, ConsentRecord, Delivery, Subscriber, Suppression
from nurture.services import carers, planning, throttle, webhooks
from nurture import sending
from tests.helpers.scheduler import active_subscriber, series, send_one

pytestmark = pytest.mark.django_db

SUBSCRIBER_PURPOSES = (tokens.PREFERENCES, tokens.PAUSE, tokens.UNSUBSCRIBE, tokens.VIEW_ONLINE, tokens.CONFIRM,
                       tokens.CARER_CANCEL, tokens.CARER_APPROVE)
URL = re.compile(r"https?://[^\s<>\"')]+")


def noop(*args):
    return None


@pytest.fixture
def ana():
    return active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"]), (3, ["a2"])]), first_name="Ana")


def prefs_url(subscriber) -> str:
    return f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"


def handoff_in_force(subscriber, *, mode="as_well", email="tom@example.org") -> CarerHandoff:
    handoff = carers.carer_request(subscriber_id=subscriber.pk, carer_email=email, mode=mode, enqueue=noop, notify=noop)
    carers.carer_confirm(handoff_id=handoff.pk, notify=noop)
    if mode == "instead":
        carers.carer_subscriber_confirm(handoff_id=handoff.pk, notify=noop)
    handoff.refresh_from_db()
    assert handoff.status == "active"
    return handoff


def planned(subscriber) -> list[Delivery]:
    planning.deliveries_plan_due()
    return list(Delivery.objects.select_related("subscriber", "step__series", "carer_handoff")
                .filter(subscriber=subscriber).order_by("pk"))


def sent_copies(deliveries) -> dict[str, object]:
    mail.outbox.clear()
    for delivery in deliveries:
        assert send_one(delivery_id=delivery.pk).status == "sent"
    return {m.to[0]: m for m in mail.outbox}


# --- every address its own delivery ---------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [("as_well", [None, "tom"]), ("instead", ["tom"])])
def test_each_address_gets_its_own_delivery(ana, mode, expected):
    handoff = handoff_in_force(ana, mode=mode)
    deliveries = planned(ana)
    assert [("tom" if d.carer_handoff_id == handoff.pk else None) for d in deliveries] == expected
    assert len({d.step_id for d in deliveries}) == 1


def test_a_pending_or_suppressed_carer_gets_no_copy(ana):
    carers.carer_request(subscriber_id=ana.pk, carer_email="tom@example.org", mode="as_well", enqueue=noop, notify=noop)
    assert [d.carer_handoff_id for d in planned(ana)] == [None]
    other = active_subscriber("bea@example.org", ana.series)
    handoff_in_force(other, mode="instead", email="gone@example.org")
    Suppression.objects.create(email="GONE@example.org", reason="bounced")
    assert [d.carer_handoff_id for d in planned(other)] == [None]  # back to the subscriber's own copy


def test_the_carer_copy_is_sent_as_its_own_message_with_one_to_each(ana):
    handoff_in_force(ana, mode="as_well")
    deliveries = planned(ana)
    copies = sent_copies(deliveries)
    assert set(copies) == {"ana@example.org", "tom@example.org"}
    for message in copies.values():
        assert len(message.to) == 1 and not message.cc and not message.bcc
    ids = {d.pk: d.message_id for d in Delivery.objects.filter(subscriber=ana)}
    assert len(set(ids.values())) == 2 and all(ids.values())  # each its own Message-ID
    assert copies["tom@example.org"].extra_headers["Message-ID"] in ids.values()
    assert set(Delivery.objects.filter(subscriber=ana).values_list("status", flat=True)) == {"sent"}
    # Exactly once: sending the carer's copy again finds nothing to claim.
    carer_copy = next(d for d in deliveries if d.carer_handoff_id)
    assert send_one(delivery_id=carer_copy.pk).status == "not-claimed"


def _every_url(message) -> list[str]:
    raw = message.message().as_string()
    html = message.alternatives[0][0]
    found = URL.findall(message.body) + URL.findall(html.replace("&amp;", "&"))
    found += re.findall(r"<(https?://[^>]+)>", message.extra_headers.get("List-Unsubscribe", ""))
    assert found and "List-Unsubscribe" in raw
    return found


def _purposes_that_open(token: str) -> set[str]:
    opened = set()
    for purpose in (*SUBSCRIBER_PURPOSES, tokens.CARER_STOP, tokens.CARER_VIEW, tokens.CARER_CONFIRM):
        try:
            tokens.read_token(purpose=purpose, token=token)
        except tokens.TokenError:
            continue
        opened.add(purpose)
    return opened


def test_no_link_or_header_of_a_carer_copy_opens_the_subscriber_record(ana, client):
    handoff = handoff_in_force(ana, mode="as_well")
    copies = sent_copies(planned(ana))
    carer_copy = copies["tom@example.org"]
    raw = carer_copy.message().as_string()
    assert "ana@example.org" not in raw  # not in To, Cc, headers or body
    assert [a for _n, a in getaddresses(carer_copy.message().get_all("To"))] == ["tom@example.org"]
    assert "Ana asked us to send it to you" in carer_copy.body and "Hello Ana" not in carer_copy.body
    opened: set[str] = set()
    for url in _every_url(carer_copy):
        path = urlsplit(url).path
        segments = [s for s in path.split("/") if s]
        for segment in segments:
            opened |= _purposes_that_open(segment)
        if segments and segments[0] in ("preferences", "pause", "unsubscribe", "email", "links", "confirm"):
            pytest.fail(f"a subscriber route in the carer's copy: {path}")
    assert opened <= {tokens.CARER_STOP, tokens.CARER_VIEW} and tokens.CARER_STOP in opened
    # The List-Unsubscribe header is the carer's own stop link.
    [header_url] = re.findall(r"<(https?://[^>]+)>", carer_copy.extra_headers["List-Unsubscribe"])
    assert urlsplit(header_url).path.startswith("/carer/stop/")
    # The web version opens this copy, with the carer's links only.
    [view_url] = {u for u in _every_url(carer_copy) if "/carer/email/" in u}
    page = client.get(urlsplit(view_url).path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "/carer/stop/" in html and "/preferences/" not in html and "/pause/" not in html and "/unsubscribe/" not in html
    assert "ana@example.org" not in html
    # The subscriber's own copy still carries the subscriber's links.
    assert "/preferences/" in copies["ana@example.org"].body
    assert handoff.pk  # the same hand-off throughout


def test_one_click_on_the_carer_header_stops_only_the_carer(ana, django_capture_on_commit_callbacks):
    handoff = handoff_in_force(ana, mode="as_well")
    carer_copy = sent_copies(planned(ana))["tom@example.org"]
    [header_url] = re.findall(r"<(https?://[^>]+)>", carer_copy.extra_headers["List-Unsubscribe"])
    mail.outbox.clear()
    # RFC 8058: a mail client POSTs List-Unsubscribe=One-Click, with no CSRF token.
    with django_capture_on_commit_callbacks(execute=True):
        response = Client(enforce_csrf_checks=True).post(urlsplit(header_url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    handoff.refresh_from_db()
    ana.refresh_from_db()
    assert handoff.status == "stopped" and handoff.stopped_by == "carer"
    assert ana.status == Subscriber.Status.ACTIVE and not Suppression.objects.exists()
    [told] = mail.outbox
    assert told.to == ["ana@example.org"] and "tom@example.org" in told.body  # the subscriber is told


# --- bounces and complaints of a carer's copy --------------------------------------------------------------


@pytest.mark.parametrize("event_type, reason, stopped_by", [("bounced", "bounced", "bounce"), ("complained", "spam", "complaint")])
def test_a_carer_bounce_or_complaint_suppresses_the_carer_only_and_ends_the_hand_off(
    ana, event_type, reason, stopped_by, django_capture_on_commit_callbacks
):
    handoff = handoff_in_force(ana, mode="instead")
    [carer_copy] = planned(ana)
    sent_copies([carer_copy])
    Delivery.objects.filter(pk=carer_copy.pk).update(provider_message_id="pm-carer-1")  # as the provider answered
    carer_copy.refresh_from_db()
    told = []
    event = AnymailTrackingEvent(event_type=event_type, message_id=carer_copy.provider_message_id, recipient="tom@example.org",
                                 reject_reason=reason, event_id=f"ev-{event_type}", esp_event={})
    with django_capture_on_commit_callbacks(execute=True):
        result = webhooks.tracking_event_record(provider="postmark", event=event, notify=lambda h, e: told.append((h, e)))
    assert result.suppressed
    assert list(Suppression.objects.values_list("email", flat=True)) == ["tom@example.org"]
    ana.refresh_from_db()
    handoff.refresh_from_db()
    assert ana.status == Subscriber.Status.ACTIVE
    assert handoff.status == "stopped" and handoff.stopped_by == stopped_by
    assert told == [(handoff.pk, carers.NOTICE_STOPPED)]


# --- the subscriber is told, and stays in charge --------------------------------------------------------


def test_the_subscriber_is_emailed_on_request_confirmation_and_stop(ana, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(prefs_url(ana), {"action": "carer", "carer_email": "tom@example.org", "mode": "as_well"})
    [notice] = [m for m in mail.outbox if m.to == ["ana@example.org"]]
    [cancel] = re.findall(r"/carer/cancel/([A-Za-z0-9_-]+)/", notice.body)
    handoff = CarerHandoff.objects.get()
    assert tokens.read_token(purpose=tokens.CARER_CANCEL, token=cancel) == (ana.pk, str(handoff.pk))
    [ask] = [m for m in mail.outbox if m.to == ["tom@example.org"]]
    [confirm] = re.findall(r"/carer/confirm/([A-Za-z0-9_-]+)/", ask.body)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/carer/confirm/{confirm}/")
    [active] = mail.outbox
    assert active.to == ["ana@example.org"] and "now go to tom@example.org as well as to you" in active.body
    assert "/carer/cancel/" in active.body
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(f"/carer/cancel/{cancel}/").status_code == 200  # GET changes nothing
        assert CarerHandoff.objects.get().status == "active"
        client.post(f"/carer/cancel/{cancel}/")
    [stopped] = mail.outbox
    assert stopped.to == ["ana@example.org"] and "no longer go to tom@example.org" in stopped.body
    assert CarerHandoff.objects.get().stopped_by == "subscriber"


def test_instead_waits_for_the_subscriber_own_confirmation(ana, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(prefs_url(ana), {"action": "carer", "carer_email": "eve@example.org", "mode": "instead"})
    [notice] = [m for m in mail.outbox if m.to == ["ana@example.org"]]
    [approve] = re.findall(r"/carer/approve/([A-Za-z0-9_-]+)/", notice.body)
    [ask] = [m for m in mail.outbox if m.to == ["eve@example.org"]]
    [confirm] = re.findall(r"/carer/confirm/([A-Za-z0-9_-]+)/", ask.body)
    client.post(f"/carer/confirm/{confirm}/")  # the carer (or whoever holds a leaked link) agrees
    handoff = CarerHandoff.objects.get()
    assert handoff.status == "pending" and handoff.carer_confirmed_at
    assert [d.carer_handoff_id for d in planned(ana)] == [None]  # still the subscriber's own copy
    assert client.get(f"/carer/approve/{approve}/").status_code == 200
    assert CarerHandoff.objects.get().status == "pending"  # GET changes nothing
    client.post(f"/carer/approve/{approve}/")
    handoff.refresh_from_db()
    assert handoff.status == "active" and handoff.subscriber_confirmed_at
    assert ConsentRecord.objects.filter(subscriber=ana, source="subscriber_link", confirmed_at__isnull=False).exists()


def test_an_approve_link_cannot_be_made_from_the_carer_link(ana):
    handoff = carers.carer_request(subscriber_id=ana.pk, carer_email="eve@example.org", mode="instead", enqueue=noop, notify=noop)
    carer_token = tokens.make_token(purpose=tokens.CARER_CONFIRM, subscriber_id=ana.pk, extra=str(handoff.pk))
    assert Client().post(f"/carer/approve/{carer_token}/").status_code == 400
    handoff.refresh_from_db()
    assert handoff.subscriber_confirmed_at is None


def test_new_links_end_every_hand_off_and_revoke_the_carer_links(ana, client, django_capture_on_commit_callbacks):
    handoff = handoff_in_force(ana, mode="instead")
    carer_copy = sent_copies(planned(ana))["tom@example.org"]
    carer_urls = {urlsplit(u).path for u in _every_url(carer_copy) if urlsplit(u).path.startswith("/carer/")}
    assert len(carer_urls) == 2  # the stop link and the web version
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(prefs_url(ana), {"action": "new_links"})
    handoff.refresh_from_db()
    assert handoff.status == "stopped" and handoff.stopped_by == "new_links"
    assert any(m.to == ["ana@example.org"] and "no longer go to tom@example.org" in m.body for m in mail.outbox)
    for path in carer_urls:  # the carer's stop link and web version died with the old link version
        assert client.get(path).status_code == 400, path
    assert not CarerHandoff.objects.filter(status__in=["pending", "active"]).exists()


def test_the_pause_page_hands_out_no_preference_link(ana, client):
    token = tokens.make_token(purpose=tokens.PAUSE, subscriber_id=ana.pk)
    for response in (client.get(f"/pause/{token}/"), client.post(f"/pause/{token}/", {"weeks": "2"})):
        assert response.status_code == 200
        assert "/preferences/" not in response.content.decode()


# --- no stranger mailed more than needed ----------------------------------------------------------------


def test_carer_requests_are_capped_per_subscriber(ana, client, settings):
    settings.NURTURE_CARER_REQUESTS_PER_DAY = 3
    for n in range(3):
        page = client.post(prefs_url(ana), {"action": "carer", "carer_email": f"c{n}@example.org", "mode": "as_well"})
        assert page.status_code == 200
    page = client.post(prefs_url(ana), {"action": "carer", "carer_email": "c4@example.org", "mode": "as_well"})
    assert page.status_code == 429 and int(page["Retry-After"]) > 0
    assert CarerHandoff.objects.count() == 3 and not CarerHandoff.objects.filter(carer_email="c4@example.org").exists()


def test_carer_emails_have_their_own_ceiling_and_queue(ana, settings):
    from django.conf import settings as live

    throttle.forget_in_process_limiters()
    settings.NURTURE_CARER_EMAILS_PER_HOUR = 1
    settings.NURTURE_SERVICE_EMAILS_PER_HOUR = 5
    first = carers.carer_request(subscriber_id=ana.pk, carer_email="one@example.org", mode="as_well", enqueue=noop, notify=noop)
    assert carers.carer_confirmation_email_send(handoff_id=first.pk).sent
    second = carers.carer_request(subscriber_id=ana.pk, carer_email="two@example.org", mode="as_well", enqueue=noop, notify=noop)
    waiting = carers.carer_confirmation_email_send(handoff_id=second.pk)
    assert not waiting.sent and waiting.retry_in > 0  # carer emails wait for their own ceiling...
    assert throttle.take_service_email_slot() == 0.0  # ...which leaves the sign-up confirmations' untouched
    routes = live.CELERY_TASK_ROUTES
    assert routes["nurture.send_carer_confirmation_email"]["queue"] == routes["nurture.send_carer_notice"]["queue"] == "carers"
    assert routes["nurture.process_signup"]["queue"] == "service"
    throttle.forget_in_process_limiters()


def _answer(client, subscriber, address: str, mode: str) -> tuple[int, str]:
    page = client.post(prefs_url(subscriber), {"action": "carer", "carer_email": address, "mode": mode})
    # The page names the address it manages (the subscriber's own): that differs by design.
    html = page.content.decode().replace(address, "ADDRESS").replace(subscriber.email, "SUBSCRIBER")
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    html = re.sub(r"/[a-z/]+/[A-Za-z0-9_-]{40,}/", "/TOKEN/", html)
    return page.status_code, html


@pytest.mark.parametrize("mode", ["as_well", "sideways"])
def test_the_answer_is_the_same_whatever_the_carer_address(client, mode):
    """Suppressed, erased or never seen: the page cannot tell (the worker decides)."""
    the_series = series("recently_diagnosed", [(0, ["a1"])])
    Suppression.objects.create(email="gone@example.org", reason="unsubscribed")
    answers = []
    for n, address in enumerate(["gone@example.org", "fresh@example.org"]):
        subscriber = active_subscriber(f"s{n}@example.org", the_series, first_name="Sam")
        answers.append(_answer(client, subscriber, address, mode))
    assert answers[0] == answers[1]
    assert answers[0][0] == (200 if mode == "as_well" else 400)


def test_the_worker_does_not_email_a_suppressed_carer(ana):
    Suppression.objects.create(email="gone@example.org", reason="erased")
    handoff = carers.carer_request(subscriber_id=ana.pk, carer_email="gone@example.org", mode="as_well", enqueue=noop, notify=noop)
    mail.outbox.clear()
    assert not carers.carer_confirmation_email_send(handoff_id=handoff.pk).sent
    assert not mail.outbox


def test_the_carer_confirmation_names_the_subscriber_by_first_name_only(ana):
    handoff = carers.carer_request(subscriber_id=ana.pk, carer_email="tom@example.org", mode="as_well", enqueue=noop, notify=noop)
    mail.outbox.clear()
    assert carers.carer_confirmation_email_send(handoff_id=handoff.pk).sent
    [ask] = mail.outbox
    raw = ask.message().as_string()
    assert "ana@example.org" not in raw and "Ana asked us" in ask.body


def test_the_carer_confirmation_counts_against_the_carer_mailbox(ana, settings):
    """Naming a stranger as one's carer again and again (even from several subscribers' links) must
    not fill their inbox: the carer's confirmation counts against their mailbox like a sign-up email."""
    from django.core.cache import cache

    cache.clear()
    throttle.forget_in_process_limiters()
    settings.NURTURE_CONFIRM_RESEND_MINUTES = 0
    settings.NURTURE_SIGNUP_EMAILS_PER_ADDRESS_PER_DAY = 2
    settings.NURTURE_CARER_REQUESTS_PER_DAY = 100
    mail.outbox.clear()
    outcomes = []
    for _ in range(4):
        handoff = carers.carer_request(subscriber_id=ana.pk, carer_email="Stranger+x@Example.org", mode="instead",
                                       enqueue=noop, notify=noop)
        outcomes.append(carers.carer_confirmation_email_send(handoff_id=handoff.pk).sent)
    assert outcomes == [True, True, False, False]
    assert len(mail.outbox) == 2
    throttle.forget_in_process_limiters()


def test_an_unknown_outcome_of_a_carer_copy_is_settled_by_the_carer_event_only(ana, django_capture_on_commit_callbacks):
    """A carer's copy whose answer was never heard is found by its own delivery id and settled by an
    event naming the carer's address; the same id with the subscriber's address matches nothing."""
    handoff_in_force(ana, mode="as_well")
    carer_copy = next(d for d in planned(ana) if d.carer_handoff_id)
    Delivery.objects.filter(pk=carer_copy.pk).update(status="unknown", message_id="<c1@guide.example.org>",
                                                     failure_reason="unknown outcome: ReadTimeout")
    wrong = webhooks.match_event(message_id="", recipient="ana@example.org", metadata={"delivery": str(carer_copy.pk)})
    assert not wrong.matched and not wrong.email
    right = webhooks.match_event(message_id="", recipient="tom@example.org", metadata={"delivery": str(carer_copy.pk)})
    assert right.matched and right.email == "tom@example.org" and right.delivery.pk == carer_copy.pk
    event = AnymailTrackingEvent(event_type="delivered", message_id="pm-late-1", recipient="tom@example.org",
                                 metadata={"delivery": str(carer_copy.pk)}, event_id="ev-late-1", esp_event={})
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.tracking_event_record(provider="postmark", event=event, notify=noop)
    carer_copy.refresh_from_db()
    assert carer_copy.status == "sent" and carer_copy.provider_message_id == "pm-late-1"


def test_a_provider_without_message_ids_matches_a_carer_we_emailed_lately(ana, django_capture_on_commit_callbacks):
    handoff = handoff_in_force(ana, mode="as_well")
    assert not webhooks.match_event(message_id="", recipient="tom@example.org").matched  # nothing sent to Tom yet
    sent_copies(planned(ana))
    match = webhooks.match_event(message_id="", recipient="TOM@example.org")
    assert match.matched and match.email == "tom@example.org" and match.delivery.carer_handoff_id == handoff.pk
    # brevo: a provider whose events are not known to name their message (providers.events_carry_message_id)
    event = AnymailTrackingEvent(event_type="complained", message_id=None, recipient="tom@example.org",
                                 event_id="ev-no-id-1", esp_event={})
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.tracking_event_record(provider="brevo", event=event, notify=noop).suppressed
    handoff.refresh_from_db()
    ana.refresh_from_db()
    assert handoff.stopped_by == "complaint" and ana.status == "active"
    assert list(Suppression.objects.values_list("email", flat=True)) == ["tom@example.org"]


def test_when_instead_ends_a_queued_carer_copy_goes_to_the_subscriber(ana):
    handoff = handoff_in_force(ana, mode="instead")
    [queued] = planned(ana)
    assert queued.carer_handoff_id == handoff.pk and queued.status == "queued"
    carers.carer_stop(handoff_id=handoff.pk, by="carer", source="carer_link", notify=noop)
    mail.outbox.clear()
    assert send_one(delivery_id=queued.pk).status == "sent"
    [message] = mail.outbox
    assert message.to == ["ana@example.org"] and "/preferences/" in message.body  # the subscriber's own copy


def test_a_spanish_carer_copy_and_notice_are_in_spanish():
    sofia = active_subscriber("sofia@example.org", series("recently_diagnosed", [(0, ["a1"])], language="es"),
                              first_name="Sofía")
    handoff = handoff_in_force(sofia, mode="as_well")
    copy = sent_copies(planned(sofia))["tom@example.org"]
    assert "Hola. Recibe este correo porque Sofía nos pidió que se lo enviáramos." in copy.body
    assert "Dejar de enviarme estos correos" in copy.body and "Cambiar sus opciones" not in copy.body
    mail.outbox.clear()
    assert carers.carer_notice_email_send(handoff_id=handoff.pk, event=carers.NOTICE_ACTIVE).sent
    [notice] = mail.outbox
    assert notice.to == ["sofia@example.org"] and "Sus correos ahora se envían a tom@example.org además de a usted." in notice.body


def test_a_carer_address_refused_at_send_time_ends_the_hand_off_and_the_subscriber_is_told(
    ana, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """The provider refuses the carer's address when the copy is handed over (no webhook will come):
    the carer is suppressed, the hand-off ends as for a bounce, and the subscriber is told, so an
    "instead of me" subscriber is not left receiving nothing."""
    from support.fake_provider import FakeProvider
    from nurture import tasks
    handoff = handoff_in_force(ana, mode="instead")
    [carer_copy] = planned(ana)
    told = []
    monkeypatch.setattr(tasks, "enqueue_carer_notice", lambda handoff_id, event: told.append((handoff_id, event)))
    settings.NURTURE_BATCH_SEND = False
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url}
        fake.state.inactive = {"tom@example.org"}
        with django_capture_on_commit_callbacks(execute=True):
            sending.deliveries_send(delivery_ids=[carer_copy.pk])
    carer_copy.refresh_from_db()
    handoff.refresh_from_db()
    ana.refresh_from_db()
    assert carer_copy.status == "failed" and carer_copy.failure_reason.startswith("recipient refused")
    assert list(Suppression.objects.values_list("email", flat=True)) == ["tom@example.org"]
    assert handoff.status == "stopped" and handoff.stopped_by == "bounce"
    assert ana.status == Subscriber.Status.ACTIVE
    assert told == [(handoff.pk, carers.NOTICE_STOPPED)]
    assert ConsentRecord.objects.filter(subscriber=ana, kind=ConsentRecord.Kind.CARER_STOPPED, source="provider_refused").exists()


def test_a_handoffs_copies_are_found_by_the_partial_unique_index(postgres, ana):
    """Delivery.carer_handoff has no plain index of its own (migration 0003: it put an entry for
    every row into every write). Lookups by handoff, as its CASCADE delete and the care pages make
    them, can use delivery_unique_carer_step (partial on "not null"): with sequential scans off, the
    plan names it rather than scanning every delivery."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, Delivery._meta.db_table)
    assert [name for name, i in indexes.items() if i["index"] and i["columns"][:1] == ["carer_handoff_id"]] == [
        "delivery_unique_carer_step"]
    handoff = handoff_in_force(ana)
    for lookup in (Delivery.objects.filter(carer_handoff=handoff),
                   Delivery.objects.filter(carer_handoff_id__in=[handoff.pk, handoff.pk + 1])):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            assert "delivery_unique_carer_step" in lookup.explain()
