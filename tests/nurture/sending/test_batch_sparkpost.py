"""Batch sending through SparkPost's Transmissions API (anymail's real SparkPost backend talking
to FakeSparkPost on 127.0.0.1): one call per body, byte identity with a single send once SparkPost
has rendered each recipient's substitution_data, each kind of outcome, and its webhooks finding
each delivery of a call."""
from __future__ import annotations

import base64
import json
import time

import pytest
import time_machine

from nurture import providers
from nurture.emails.layout import PH_GREETING
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery, ProviderEvent, Step, Suppression
from nurture.services import planning
from nurture import sending
from support.fake_esps import FakeSparkPost, sparkpost_render
from support.fake_provider import CLIENT_TIMEOUT
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

# Names that need escaping in HTML, a no-break space, one with braces, one like a placeholder.
NAMES = ["Ana & Bo <b>", 'Zoë "Z"', "Jo\u00a0Lee", "", "Sam {x} }}", PH_GREETING]


@pytest.fixture(autouse=True)
def quick(fast_sending, settings):
    settings.NURTURE_BATCH_SEND = True


@pytest.fixture
def sparkpost(settings):
    with FakeSparkPost() as fake:
        wired = fake.anymail_settings()
        settings.EMAIL_BACKEND = wired["EMAIL_BACKEND"]
        settings.ANYMAIL = {**settings.ANYMAIL, **wired["ANYMAIL"]}  # keeps SEND_DEFAULTS (tracking off)
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake


def planned(n: int, *, names: list[str] | None = None) -> list[int]:
    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    for i in range(n):
        active_subscriber(f"s{i}@example.org", the_series, first_name=(names or [""])[i % len(names or [""])])
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def loaded(delivery_id: int) -> Delivery:
    return Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)


def test_sparkpost_is_a_batch_endpoint_with_its_own_syntax(settings):
    settings.EMAIL_BACKEND = providers.SPARKPOST_BACKEND
    endpoint = providers.batch_endpoint()
    assert endpoint.merge_field_format.format("html_greeting") == "{{{html_greeting}}}"
    assert endpoint.syntax_marker == "{{" and endpoint.ids_per_recipient


def test_sparkpost_rendering_gives_the_bytes_of_a_single_send(sparkpost):
    ids = planned(len(NAMES), names=NAMES)
    with time_machine.travel(1_800_000_000, tick=False):  # signed links carry seconds
        outcome = sending.deliveries_send(delivery_ids=ids)
        singles = {i: build_delivery_email(loaded(i)) for i in ids}
    assert outcome.counts == {"sent": len(ids)}
    assert len(sparkpost.state.calls) == 1 and len(sparkpost.state.delivered) == len(ids)
    [call] = sparkpost.state.calls
    by_address = {d["to"]: d for d in sparkpost.state.delivered}
    for delivery_id in ids:
        delivery = loaded(delivery_id)
        single = singles[delivery_id]
        received = by_address[delivery.subscriber.email]
        assert received["text"] == single.body
        assert received["html"] == single.alternatives[0][0]
        assert received["subject"] == single.subject
        assert received["headers"]["Message-ID"] == delivery.message_id == single.extra_headers["Message-ID"]
        assert received["headers"]["List-Unsubscribe"] == single.extra_headers["List-Unsubscribe"]
        assert received["headers"]["List-Id"] == single.extra_headers["List-Id"]
        assert received["metadata"] == {"delivery": str(delivery_id)}
        # SparkPost answers one transmission id for the call; its webhooks report that id.
        assert delivery.provider_message_id == sparkpost.state.accepted[0].provider_message_id
        assert delivery.status == "sent" and delivery.attempts == 1 and delivery.article_versions
    assert len({d["headers"]["List-Unsubscribe"] for d in sparkpost.state.delivered}) == len(ids)
    assert "{{{html_greeting}}}" in call["content"]["html"]  # one body, filled in by SparkPost


def test_nothing_about_the_stage_reaches_sparkpost(sparkpost):
    ids = planned(4, names=NAMES)
    sending.deliveries_send(delivery_ids=ids)
    [call] = sparkpost.state.calls
    sent = json.dumps(call).lower()
    for stage in ("in_treatment", "recently_diagnosed", "in_remission", "stage"):
        assert stage not in sent
    assert "campaign_id" not in call and "metadata" not in call  # no tag; metadata per recipient only
    assert all(r["metadata"] == {"delivery": str(i)} for r, i in zip(call["recipients"], ids))
    # Series mail is SparkPost's non-transactional (bulk) kind; tracking stays off.
    assert call["options"] == {"click_tracking": False, "open_tracking": False, "transactional": False}


@pytest.mark.parametrize("fault", ["429", "500"])
def test_transient_error_requeues_the_whole_call_then_sends_each_once(sparkpost, fault):
    sparkpost.state.first_faults = [fault]
    ids = planned(4)
    first = sending.deliveries_send(delivery_ids=ids)
    assert first.counts == {"retry": 4} and sorted(first.retry_ids) == ids
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    second = sending.deliveries_send(delivery_ids=first.retry_ids)
    assert second.counts == {"sent": 4}
    assert sorted(sparkpost.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]


def test_a_read_timeout_leaves_the_whole_call_unknown_and_it_is_not_resent(sparkpost, settings):
    sparkpost.state.first_faults = ["timeout"]
    sparkpost.outwait_the_client(settings)
    ids = planned(3)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"unknown": 3} and not outcome.retry_ids
    assert set(Delivery.objects.values_list("status", flat=True)) == {"unknown"}
    assert sending.deliveries_send(delivery_ids=ids).counts.get("sent", 0) == 0  # never resent blindly


def test_a_bad_address_fails_the_whole_call_with_the_reason(sparkpost):
    ids = planned(3)
    sparkpost.state.bad_request_for = {"s1@example.org"}
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"failed": 3} and not outcome.retry_ids
    assert all("HTTP 422" in reason for reason in Delivery.objects.values_list("failure_reason", flat=True))


def test_a_name_with_template_syntax_is_a_value_and_arrives_as_written(sparkpost):
    """SparkPost reads its syntax in the content it is given, never in substitution values: a
    name like "{{html_greeting}}" is safe as a value and goes in the batch call."""
    ids = planned(3, names=["{{html_greeting}} me"])
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 3} and len(sparkpost.state.calls) == 1
    assert all("{{html_greeting}} me" in d["text"] for d in sparkpost.state.delivered)
    assert all("{{html_greeting}} me" in d["html"] for d in sparkpost.state.delivered)


def test_content_with_template_syntax_is_never_batched(sparkpost):
    ids = planned(2)
    Step.objects.update(subject="Your {{next}} step")
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 2} and len(sparkpost.state.calls) == 2


def test_fake_sparkpost_renders_like_sparkpost():
    values = {"a": "<&>", "b": "{{a}}"}
    assert sparkpost_render("{{a}} {{{a}}} {{ b }} {{missing}}", values, html_part=True) == "&lt;&amp;&gt; <&> {{a}} "
    assert sparkpost_render("{{a}} {{{a}}}", values) == "<&> <&>"


def test_a_sparkpost_bounce_webhook_finds_the_delivery_of_the_call_it_names(sparkpost, settings, client):
    """SparkPost's events report the transmission id, the same for every delivery of a call; the
    recipient's metadata (rcpt_meta) says which. A bounce in SparkPost's documented format, posted
    to anymail's real SparkPost tracking view, reaches that delivery and suppresses its address."""
    ids = planned(3)
    sending.deliveries_send(delivery_ids=ids)
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:secret"}
    target = loaded(ids[1])
    assert Delivery.objects.filter(provider_message_id=target.provider_message_id).count() == 3
    event = [{"msys": {"message_event": {
        "type": "bounce", "bounce_class": "10", "event_id": "ev-1", "timestamp": str(int(time.time())),
        "transmission_id": target.provider_message_id, "raw_rcpt_to": target.subscriber.email,
        "rcpt_meta": {"delivery": str(target.pk)}, "raw_reason": "550 5.1.1 mailbox not found",
    }}}]
    answer = client.post("/anymail/sparkpost/tracking/", data=json.dumps(event), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:secret").decode())
    assert answer.status_code == 200, answer.content
    assert target.events.count() == 1  # this delivery, not another of the same transmission
    assert Suppression.objects.filter(email__iexact=target.subscriber.email).count() == 1
    assert Suppression.objects.count() == 1


def test_metadata_naming_another_calls_delivery_links_the_event_to_none(sparkpost, settings, client):
    """A forged or stale rcpt_meta can only choose among the deliveries carrying the event's
    transmission id: naming a delivery of another call links the event to no delivery at all."""
    first_call = planned(2)
    sending.deliveries_send(delivery_ids=first_call)
    other = series("in_remission", [(0, ["remission-article"])])
    active_subscriber("x@example.org", other)
    planning.deliveries_plan_due()
    outsider = Delivery.objects.exclude(pk__in=first_call).get()
    sending.deliveries_send(delivery_ids=[outsider.pk])
    outsider.refresh_from_db()
    target = loaded(first_call[0])
    assert outsider.provider_message_id != target.provider_message_id
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:secret"}
    event = [{"msys": {"message_event": {
        "type": "delivery", "event_id": "ev-2", "timestamp": str(int(time.time())),
        "transmission_id": target.provider_message_id, "raw_rcpt_to": target.subscriber.email,
        "rcpt_meta": {"delivery": str(outsider.pk)},
    }}}]
    answer = client.post("/anymail/sparkpost/tracking/", data=json.dumps(event), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:secret").decode())
    assert answer.status_code == 200
    assert outsider.events.count() == 0 and target.events.count() == 0
    assert ProviderEvent.objects.filter(delivery__isnull=True, provider_message_id=target.provider_message_id).count() == 1


def test_a_sparkpost_soft_bounce_suppresses_nothing():
    soft = {"msys": {"message_event": {"type": "bounce", "bounce_class": "22"}}}  # mailbox full
    hard = {"msys": {"message_event": {"type": "bounce", "bounce_class": "10"}}}  # invalid recipient
    assert providers.is_soft_bounce(provider="sparkpost", esp_event=soft)
    assert not providers.is_soft_bounce(provider="sparkpost", esp_event=hard)
