"""Batch sending through an ESP's batch endpoint (Mailgun, via anymail's real Mailgun backend
talking to FakeMailgun on 127.0.0.1): grouping, the merge-field mapping, byte identity with a
single send once the ESP has substituted, and each kind of outcome."""
from __future__ import annotations

import json
import time

import pytest
import time_machine
from django.utils import timezone
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.message import AnymailRecipientStatus

from nurture import providers
from nurture.emails.cache import step_render_with_placeholders
from nurture.emails.layout import PH_GREETING, PH_UNSUBSCRIBE_URL, VIEW_ONLINE_START
from nurture.emails.links import Personal
from nurture.emails.merge import merge_bodies, merge_values
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery, Subscriber, Suppression
from nurture.selectors.deliveries import delivery_articles
from nurture.services import planning, throttle
from nurture import sending
from nurture.sending import batch_calls, ledger, recheck
from support.fake_provider import CLIENT_TIMEOUT, FakeMailgun, FakeProvider, mailgun_merge
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

# Names that need escaping in HTML, a no-break space, and one that looks like a placeholder.
NAMES = ["Ana & Bo <b>", 'Zoë "Z"', "Jo\u00a0Lee", "", PH_GREETING]


@pytest.fixture(autouse=True)
def quick(fast_sending, settings):
    settings.NURTURE_BATCH_SEND = True


@pytest.fixture
def mailgun(settings):
    with FakeMailgun() as fake:
        wired = fake.anymail_settings()
        settings.EMAIL_BACKEND = wired["EMAIL_BACKEND"]
        settings.ANYMAIL = {**settings.ANYMAIL, **wired["ANYMAIL"]}  # keeps SEND_DEFAULTS (tracking off)
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake


def planned(n: int, *, prefix: str = "b", names: list[str] | None = None) -> list[int]:
    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    for i in range(n):
        active_subscriber(f"{prefix}{i}@example.org", the_series, first_name=(names or [""])[i % len(names or [""])])
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def loaded(delivery_id: int) -> Delivery:
    return Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)


# --- the merge mapping ----------------------------------------------------------------------------

def test_merge_bodies_put_esp_fields_where_the_placeholders_were():
    ids = planned(1)
    delivery = loaded(ids[0])
    articles = delivery_articles(delivery=delivery)
    cached = step_render_with_placeholders(step=delivery.step, articles=articles, language="en")
    assert PH_GREETING in cached[0] and PH_UNSUBSCRIBE_URL in cached[1]
    html, text = merge_bodies(cached, field_format="%recipient.{}%")
    for part in (html, text):
        assert "NURTUREPH0" not in part and VIEW_ONLINE_START not in part
    assert "%recipient.html_greeting%" in html and "%recipient.text_greeting%" not in html
    assert "%recipient.text_unsubscribe_url%" in text and "%recipient.html_unsubscribe_url%" not in text


def test_merge_values_escape_html_parts_and_keep_text_parts_raw():
    personal = Personal(greeting="Hi A&B <x>,", preferences_url="https://e/p?a=1&b=2",
                               unsubscribe_url='https://e/u"', view_online_url="https://e/v")
    values = merge_values(personal)
    assert values["html_greeting"] == "Hi A&amp;B &lt;x&gt;,"
    assert values["text_greeting"] == "Hi A&B <x>,"
    assert values["html_preferences_url"] == "https://e/p?a=1&amp;b=2"
    assert values["html_unsubscribe_url"] == "https://e/u&quot;"
    with pytest.raises(ValueError):
        merge_values(Personal(greeting="Hi,", preferences_url="p", unsubscribe_url="u"))


def test_esp_substitution_gives_the_bytes_of_a_single_send(mailgun):
    ids = planned(len(NAMES), names=NAMES)
    # Signed links carry a timestamp (seconds): the clock stands still so both sides sign alike.
    with time_machine.travel(1_800_000_000, tick=False):
        outcome = sending.deliveries_send(delivery_ids=ids)
        singles = {i: build_delivery_email(loaded(i)) for i in ids}  # what one-by-one sends would be
    assert outcome.counts == {"sent": len(ids)}
    assert len(mailgun.state.calls) == 1 and len(mailgun.state.delivered) == len(ids)
    by_address = {d["to"]: d for d in mailgun.state.delivered}
    for delivery_id in ids:
        delivery = loaded(delivery_id)
        single = singles[delivery_id]
        received = by_address[delivery.subscriber.email]
        assert received["text"] == single.body
        assert received["html"] == single.alternatives[0][0]
        assert received["subject"] == single.subject
        assert received["headers"]["Message-Id"] == delivery.message_id == single.extra_headers["Message-ID"]
        assert received["headers"]["List-Unsubscribe"] == single.extra_headers["List-Unsubscribe"]
        assert received["headers"]["List-Id"] == single.extra_headers["List-Id"]
        assert received["user_variables"] == {"delivery": str(delivery_id)}
        # Mailgun answers one id per call: we keep our per-recipient Message-ID, which its webhooks report.
        assert delivery.provider_message_id == delivery.message_id
        assert delivery.status == "sent" and delivery.attempts == 1 and delivery.article_versions
    assert len({d["headers"]["List-Unsubscribe"] for d in mailgun.state.delivered}) == len(ids)


def test_nothing_about_the_stage_reaches_the_provider(mailgun):
    ids = planned(4, names=NAMES)
    sending.deliveries_send(delivery_ids=ids)
    [form] = mailgun.state.calls
    sent = json.dumps(form).lower()
    for stage in ("in_treatment", "recently_diagnosed", "in_remission", "stage"):
        assert stage not in sent
    # The one tag is the stream's ("series"): it says which kind of email, never whose stage.
    assert {key: value for key, value in form.items() if key.startswith("o:tag")} == {"o:tag": ["series"]}
    assert {key for key in form if key.startswith("v:")} == {"v:delivery"}
    assert form["o:tracking-opens"] == ["no"] and form["o:tracking-clicks"] == ["no"]


# --- grouping -------------------------------------------------------------------------------------

def test_grouping_one_call_per_body_each_address_once_and_a_size_limit():
    ids = planned(5)
    other = series("in_remission", [(0, ["remission-article"])])
    active_subscriber("x@example.org", other)
    planning.deliveries_plan_due()
    stamp = timezone.now()
    all_ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    claimed, skipped = recheck.deliveries_recheck(delivery_ids=ledger.deliveries_claim(delivery_ids=all_ids, stamp=stamp), stamp=stamp)
    assert skipped == {} and len(claimed) == 6
    calls = batch_calls.group_for_batch_calls(claimed, limit=3)
    assert [len(call) for call in calls] == [3, 2, 1]
    assert {c.delivery.step_id for c in calls[2]} != {c.delivery.step_id for c in calls[0]}
    # The same address twice (merge data is keyed by address): never in one call.
    twice = batch_calls.group_for_batch_calls([claimed[0], claimed[1], claimed[0]], limit=1000)
    assert [[c.delivery.pk for c in call] for call in twice] == [[ids[0], ids[1]], [ids[0]]]


def test_rechecks_skip_before_the_call(mailgun):
    ids = planned(3)
    Subscriber.objects.filter(email="b1@example.org").update(status=Subscriber.Status.UNSUBSCRIBED)
    Suppression.objects.create(email="b2@example.org", reason="test")
    outcome = sending.deliveries_send(delivery_ids=ids + ids)  # and a redelivered duplicate
    assert outcome.counts == {"sent": 1, "skipped": 2, "not-claimed": 3}
    assert [d["to"] for d in mailgun.state.delivered] == ["b0@example.org"]


def test_rate_limit_takes_one_slot_per_email(mailgun, monkeypatch):
    taken = []
    monkeypatch.setattr(throttle, "try_send_slots", lambda count: taken.append(count) or 0.0)
    ids = planned(6)
    sending.deliveries_send(delivery_ids=ids)
    assert taken == [6] and len(mailgun.state.calls) == 1


def test_a_call_carries_at_most_one_windows_worth_of_emails(mailgun, settings):
    settings.NURTURE_SENDS_PER_SECOND = 5.0  # 4 granted a second: one under the ceiling (throttle.granted_rate)
    ids = planned(6)
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 6}
    assert [len(form["to"]) for form in mailgun.state.calls] == [4, 2]


def test_slots_for_a_call_are_taken_in_one_go():
    limit = throttle.SendRateLimit("memory://", 3.0, key="batch-test")
    limit.acquire(cost=3)
    assert not limit.limiter.test(limit.item, limit.key)  # the window is full
    with pytest.raises(ValueError):
        limit.acquire(cost=4)


# --- outcomes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["429", "500"])
def test_transient_error_requeues_the_whole_call_then_sends_each_once(mailgun, fault):
    mailgun.state.first_faults = [fault]
    ids = planned(4)
    first = sending.deliveries_send(delivery_ids=ids)
    assert first.counts == {"retry": 4} and sorted(first.retry_ids) == ids and first.retry_countdown > 0
    for delivery in Delivery.objects.all():
        assert delivery.status == "queued" and delivery.provider_call_started_at is None
        assert delivery.attempts == 1 and delivery.next_attempt_at is not None and "attempt 1" in delivery.failure_reason
    second = sending.deliveries_send(delivery_ids=first.retry_ids)
    assert second.counts == {"sent": 4}
    assert sorted(mailgun.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]


def test_a_read_timeout_leaves_the_whole_call_unknown_and_it_is_not_resent(mailgun, settings):
    mailgun.state.first_faults = ["timeout"]
    mailgun.outwait_the_client(settings)
    ids = planned(3)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"unknown": 3} and outcome.retry_ids == []
    assert set(Delivery.objects.values_list("status", flat=True)) == {"unknown"}
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 3}
    assert len(mailgun.state.calls) == 1


def test_transient_error_backs_off_the_calls_not_yet_made(mailgun):
    planned(2)
    other = series("in_remission", [(0, ["remission-article"])])
    active_subscriber("x@example.org", other)
    planning.deliveries_plan_due()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    mailgun.state.first_faults = ["500"]
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert len(mailgun.state.calls) == 1  # the second call was not made
    assert sorted(outcome.retry_ids) == ids
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    assert sorted(Delivery.objects.values_list("attempts", flat=True)) == [0, 1, 1]  # only the tried ones count


def test_permanent_error_fails_the_whole_call_with_the_reason(mailgun):
    ids = planned(3)
    mailgun.state.bad_request_for = {"b1@example.org"}
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"failed": 3} and not outcome.retry_ids
    assert all("HTTP 400" in reason for reason in Delivery.objects.values_list("failure_reason", flat=True))


class PerRecipientBackend(AnymailTestBackend):
    """anymail's test backend answering per recipient, as an ESP that reports refusals in its
    send response would (Mailgun reports them later, by webhook)."""

    refused: set[str] = set()
    invalid: set[str] = set()

    def post_to_esp(self, payload, message):
        super().post_to_esp(payload, message)

        def status(email):
            kind = "rejected" if email in self.refused else "invalid" if email in self.invalid else "queued"
            return AnymailRecipientStatus(message_id=f"id-{email}" if kind == "queued" else None, status=kind)

        return {"recipient_status": {email: status(email) for email in payload.recipient_emails}}


def test_per_recipient_answers_refused_suppressed_invalid_failed_rest_sent(settings, monkeypatch):
    backend = f"{__name__}.PerRecipientBackend"
    endpoint = providers.BatchEndpoint(merge_field_format="%recipient.{}%", ids_per_recipient=True)
    monkeypatch.setitem(providers.BATCH_ENDPOINTS, backend, endpoint)
    settings.EMAIL_BACKEND = backend
    monkeypatch.setattr(PerRecipientBackend, "refused", {"b1@example.org"})
    monkeypatch.setattr(PerRecipientBackend, "invalid", {"b2@example.org"})
    ids = planned(4)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 2, "failed": 2}
    rows = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    assert rows["b1@example.org"].status == "failed" and "refused" in rows["b1@example.org"].failure_reason
    assert Suppression.objects.filter(email__iexact="b1@example.org").exists()
    assert Subscriber.objects.get(email="b1@example.org").status == "suppressed"
    assert rows["b2@example.org"].status == "failed" and "invalid" in rows["b2@example.org"].failure_reason
    assert not Suppression.objects.filter(email__iexact="b2@example.org").exists()
    # An ESP whose answer has an id per recipient: that id is kept.
    assert rows["b0@example.org"].provider_message_id == "id-b0@example.org"
    assert rows["b3@example.org"].status == "sent" and rows["b3@example.org"].sent_at is not None


def test_content_with_the_merge_syntax_falls_back_to_one_by_one(mailgun):
    ids = planned(3, names=["100%recipient.x% sure"])
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 3}
    assert len(mailgun.state.calls) == 3
    assert all("100%recipient.x% sure" in d["text"] for d in mailgun.state.delivered)  # no substitution asked


def test_a_transient_error_on_the_one_by_one_fallback_backs_off_the_calls_not_yet_made(mailgun):
    """A call that cannot be batched goes one email at a time; a transient error there stops the
    batch like a failed batch call: the next body's call is not made, every row backs off together."""
    from nurture.sending.calls import provider_health

    provider_health.forget()  # a fresh process: the first call goes alone
    planned(2, names=["100%recipient.x% sure"])
    active_subscriber("x@example.org", series("in_remission", [(0, ["remission-article"])]))
    planning.deliveries_plan_due()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    mailgun.state.first_faults = ["500"]
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert len(mailgun.state.calls) == 1  # the probe alone: neither its sibling nor the other body's call
    assert sorted(outcome.retry_ids) == ids and outcome.retry_countdown > 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    assert len(set(Delivery.objects.values_list("next_attempt_at", flat=True))) == 1  # one backoff for all
    provider_health.forget()


# --- the one-by-one path stays for everything else ------------------------------------------------

def test_batch_send_off_sends_one_call_per_email(mailgun, settings):
    settings.NURTURE_BATCH_SEND = False
    ids = planned(3)
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 3}
    assert len(mailgun.state.calls) == 3
    assert all("recipient-variables" not in form for form in mailgun.state.calls)


def test_other_backends_never_take_the_batch_path(settings):
    for backend in ("anymail.backends.postmark.EmailBackend", "django.core.mail.backends.smtp.EmailBackend",
                    "nurture.mail.OutboxEmailBackend"):
        settings.EMAIL_BACKEND = backend
        assert providers.batch_endpoint() is None
    settings.EMAIL_BACKEND = providers.MAILGUN_BACKEND
    assert providers.batch_endpoint().merge_field_format == "%recipient.{}%"


def test_postmark_takes_no_merge_fields_but_its_batch_of_whole_messages(settings):
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url}
        assert providers.batch_endpoint() is None and providers.messages_batch_provider().name == "postmark"
        ids = planned(3)
        assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 3}
        assert len(fake.state.requests) == 3 and len(fake.state.calls) == 1


def test_fake_mailgun_merge_is_one_pass():
    assert mailgun_merge("a %recipient.x% b %recipient.y%", {"x": "%recipient.y%", "y": "Y"}) == "a %recipient.y% b Y"


# --- webhooks find each batch-sent delivery -------------------------------------------------------

def test_a_mailgun_bounce_webhook_finds_the_batch_sent_delivery_by_its_message_id(mailgun, settings, client):
    """Mailgun's send answer has one id for the whole call, so each delivery keeps its Message-ID;
    Mailgun's events report that header. A permanent failure event, in Mailgun's documented
    format, posted to anymail's real Mailgun tracking view, reaches the right delivery."""
    import base64
    import hashlib
    import hmac

    ids = planned(3)
    sending.deliveries_send(delivery_ids=ids)
    assert len(mailgun.state.calls) == 1
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:secret", "MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key"}
    target = loaded(ids[1])
    timestamp, token = str(int(time.time())), "a" * 50
    signature = hmac.new(b"signing-key", (timestamp + token).encode(), hashlib.sha256).hexdigest()
    event = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": "failed", "severity": "permanent", "reason": "bounce", "timestamp": float(timestamp),
            "id": "event-1", "recipient": target.subscriber.email,
            "message": {"headers": {"message-id": target.message_id.strip("<>"), "to": target.subscriber.email}},
            "delivery-status": {"code": 550, "message": "mailbox not found", "description": ""},
            "user-variables": {"delivery": str(target.pk)},
        },
    }
    answer = client.post("/anymail/mailgun/tracking/", data=json.dumps(event), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:secret").decode())
    assert answer.status_code == 200, answer.content
    assert Suppression.objects.filter(email__iexact=target.subscriber.email).exists()
    assert target.events.count() == 1  # matched to this delivery, not another of the same call
    assert Suppression.objects.count() == 1


# --- SendGrid: personalizations with literal substitutions ---------------------------------------

def sendgrid_substitute(text: str, substitutions: dict) -> str:
    """SendGrid's legacy substitutions: each key (a literal string) replaced by its value."""
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_personalizations_carry_each_recipients_values_headers_and_delivery(settings):
    """anymail's real SendGrid payload for a batch call: one personalization per recipient with its
    substitutions (keyed by the literal merge field), its own Message-ID and List-Unsubscribe, the
    delivery id as custom_args and an id per recipient; substituting gives a single send's bytes."""
    from django.core.mail import get_connection

    from nurture.emails.merge import build_batch_email

    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "SENDGRID_API_KEY": "fake-key"}
    endpoint = providers.batch_endpoint()
    assert endpoint is not None and endpoint.ids_per_recipient
    ids = planned(3, names=NAMES)
    deliveries_ = [loaded(i) for i in ids]
    articles = delivery_articles(delivery=deliveries_[0])
    with time_machine.travel(1_800_000_000, tick=False):
        message = build_batch_email(deliveries_, articles=articles, field_format=endpoint.merge_field_format,
                                    marker=endpoint.syntax_marker)
        message.esp_extra = dict(endpoint.esp_extra)
        providers.message_stream_set(message, stream=providers.BULK)
        singles = {d.pk: build_delivery_email(d, articles=articles) for d in deliveries_}
    connection = get_connection()
    payload = connection.build_message_payload(message, connection.send_defaults)
    data = json.loads(payload.serialize_data())
    assert data["categories"] == ["series"]
    assert len(data["personalizations"]) == 3
    text = next(c["value"] for c in data["content"] if c["type"] == "text/plain")
    html = next(c["value"] for c in data["content"] if c["type"] == "text/html")
    for personalization in data["personalizations"]:
        delivery_id = int(personalization["custom_args"]["delivery"])
        single = singles[delivery_id]
        assert personalization["to"] == [{"email": loaded(delivery_id).subscriber.email}]
        assert personalization["custom_args"]["anymail_id"]  # the id SendGrid's webhooks report back
        assert personalization["headers"]["Message-ID"].startswith("<")  # each its own (made when built)
        assert personalization["headers"]["List-Unsubscribe"] == single.extra_headers["List-Unsubscribe"]
        assert sendgrid_substitute(text, personalization["substitutions"]) == single.body
        assert sendgrid_substitute(html, personalization["substitutions"]) == single.alternatives[0][0]
    assert len({p["headers"]["Message-ID"] for p in data["personalizations"]}) == 3
    assert not any(stage in json.dumps(data).lower() for stage in ("in_treatment", "recently_diagnosed", "in_remission"))
