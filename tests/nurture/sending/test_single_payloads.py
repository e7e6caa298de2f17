"""One call per email through anymail's Postmark backend: the first email of a batch gets the payload
anymail's payload code builds, the next ones a payload derived from it (Provider.single_payload_like,
the messages batch's derivation; nurture/sending/calls.py SharedPayloads). What is posted must be
exactly what anymail would have posted for each email, and what cannot be derived exactly is left to
anymail's payload code."""
from __future__ import annotations

import json

import pytest
import requests
import time_machine
from django.core.mail import get_connection

from nurture import providers, sending
from nurture.emails.messages import build_delivery_email
from nurture.models import CarerHandoff, Delivery, Subscriber
from nurture.services import planning
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


def varied_deliveries() -> list[int]:
    """Series emails as varied as the engine sends them: a named subscriber and their carer's copy,
    a non-ASCII name, plain text, larger text, a subscriber at the second step, a Spanish one."""
    from django.utils import timezone

    english = series("in_treatment", [(0, ["first-article", "second-article"]), (0, ["third-article"])])
    spanish = series("in_treatment", [(0, ["primer-articulo"])], language="es")
    people = [
        active_subscriber("a@example.org", english, first_name="Ana"),
        active_subscriber("b@example.org", english, first_name="Zoë \"<b>\""),
        active_subscriber("c@example.org", english, plain_text=True),
        active_subscriber("d@example.org", english, larger_text=True),
        active_subscriber("e@example.org", english, first_name="Eve"),
        active_subscriber("f@example.org", spanish, first_name="Fernanda"),
    ]
    Subscriber.objects.filter(email="e@example.org").update(next_step_position=1)  # at the second step
    now = timezone.now()
    CarerHandoff.objects.create(subscriber=people[0], carer_email="carer@example.org", status="active", mode="as_well",
                                carer_confirmed_at=now, subscriber_confirmed_at=now)
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def emails_of(ids: list[int]) -> list:
    """Each delivery's email as the sender builds it (series emails on the bulk stream)."""
    messages = []
    for delivery in Delivery.objects.select_related("subscriber", "step__series", "carer_handoff").filter(pk__in=ids
                                                                                                        ).order_by("id"):
        message = build_delivery_email(delivery)
        providers.message_stream_set(message, stream=providers.BULK)
        messages.append(message)
    return messages


def posted(payload, api_url: str) -> dict:
    """What anymail's backend posts for `payload`, its JSON body read back (key order aside)."""
    params = payload.get_request_params(api_url)
    return {**params, "data": json.loads(params["data"])}


def answered_by(monkeypatch, method: str) -> list[bool]:
    """Wraps Postmark's `method` (a derivation that may decline): the list says, call by call,
    whether it answered (not None) or left the work to anymail."""
    answered, real = [], getattr(providers.Postmark, method)

    def counted(self, *args):
        result = real(self, *args)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(providers.Postmark, method, counted)
    return answered


@pytest.fixture
def postmark_backend(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    return get_connection()


def test_each_derived_payload_posts_what_anymail_would_post(postmark_backend):
    postmark, backend = providers.configured(), postmark_backend
    messages = emails_of(varied_deliveries())
    assert len(messages) == 7
    assert {m.to[0] for m in messages} == {"a@example.org", "carer@example.org", "b@example.org", "c@example.org",
                                           "d@example.org", "e@example.org", "f@example.org"}
    template = (messages[0], backend.build_message_payload(messages[0], backend.send_defaults))
    for message in messages[1:]:
        expected = backend.build_message_payload(message, backend.send_defaults)
        derived = postmark.single_payload_like(template, message, backend.send_defaults, backend)
        assert derived is not None and derived is not expected and derived.message is message
        assert posted(derived, backend.api_url) == posted(expected, backend.api_url)
        # Its bodies written from the JSON made at render (nurture/emails/encoded.py), byte for byte json.dumps.
        assert derived.get_request_params(backend.api_url)["data"] == derived.serialize_json(derived.data)
        # What anymail reads when the answer comes back: the recipients, as its parser makes them.
        assert derived.to_emails == expected.to_emails and derived.cc_and_bcc_emails == expected.cc_and_bcc_emails
        assert [a.addr_spec for a in derived.to_emails] == [a.addr_spec for a in expected.to_emails] == message.to
    bodies = {m.to[0]: posted(template[1], backend.api_url)["data"] if m is messages[0]
              else posted(postmark.single_payload_like(template, m, backend.send_defaults, backend), backend.api_url)["data"]
              for m in messages}
    # The deliveries really differ where the test says they do.
    assert "HtmlBody" not in bodies["c@example.org"] and "HtmlBody" in bodies["d@example.org"]
    assert bodies["d@example.org"]["HtmlBody"] != bodies["e@example.org"]["HtmlBody"]
    assert bodies["e@example.org"]["Subject"] == "Step 2" and bodies["b@example.org"]["Subject"] == "Step 1"
    assert "Fernanda" in bodies["f@example.org"]["TextBody"]
    # The template's own payload is left as anymail built it.
    assert posted(template[1], backend.api_url)["data"]["To"] == messages[0].to[0]


def test_what_cannot_be_derived_exactly_is_left_to_anymail(postmark_backend, settings):
    postmark, backend = providers.configured(), postmark_backend
    first, other = emails_of(varied_deliveries())[:2]
    template = (first, backend.build_message_payload(first, backend.send_defaults))
    other.to = ["Someone <b@example.org>"]  # a display name: anymail formats it
    assert postmark.single_payload_like(template, other, backend.send_defaults, backend) is None
    other.to = ["b@example.org"]
    assert postmark.single_payload_like(template, other, backend.send_defaults, backend) is not None
    # anymail writes esp_extra over the JSON it built: one naming a message's own field is left to it.
    stream = dict(first.esp_extra)
    for name, value in (("Metadata", {"x": "1"}), ("Subject", "Other")):
        first.esp_extra = other.esp_extra = {**stream, name: value}
        template = (first, backend.build_message_payload(first, backend.send_defaults))
        assert backend.build_message_payload(other, backend.send_defaults).data[name] == value
        assert postmark.single_payload_like(template, other, backend.send_defaults, backend) is None
        assert postmark.batch_message_like((first, template[1].data), other, backend.send_defaults) is None
    first.esp_extra = other.esp_extra = stream
    template = (first, backend.build_message_payload(first, backend.send_defaults))
    assert postmark.single_payload_like(template, other, backend.send_defaults, backend) is not None
    # anymail's other Postmark endpoints (its bulk API, generated ids) post more than one message's JSON.
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_USE_BULK_API": True}
    assert postmark.single_payload_like(template, other, backend.send_defaults, get_connection()) is None
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_USE_BULK_API": False, "POSTMARK_GENERATE_MESSAGE_ID": True}
    assert postmark.single_payload_like(template, other, backend.send_defaults, get_connection()) is None
    # A provider that derives nothing leaves every payload to anymail.
    assert providers.Provider().single_payload_like(template, other, backend.send_defaults, backend) is None


def test_one_call_per_email_posts_what_anymail_builds_and_records_each_answer(postmark, fast_sending, settings,
                                                                                monkeypatch):
    """Through the real pipeline, one call per email to the fake Postmark: each body posted is the
    JSON anymail's payload code builds for that delivery's email, and each delivery keeps its answer."""
    settings.NURTURE_BATCH_SEND = False
    derived = answered_by(monkeypatch, "single_payload_like")
    ids = varied_deliveries()
    with time_machine.travel(1_800_000_000, tick=False):  # signed links carry a timestamp
        outcome = sending.deliveries_send(delivery_ids=ids)
        expected = {}
        with get_connection() as backend:
            for message in emails_of(ids):
                expected[message.to[0]] = backend.build_message_payload(message, backend.send_defaults).data
    assert outcome.counts == {"sent": 7}
    assert derived.count(True) >= 5  # all but the batch's first email (and any built alongside it)
    calls = postmark.state.calls
    assert len(calls) == 7 and all(isinstance(call, dict) for call in calls)
    assert {call["To"]: call for call in calls} == expected
    provider_ids = {d["to"]: d["provider_id"] for d in postmark.state.delivered}
    for delivery in Delivery.objects.select_related("subscriber", "carer_handoff"):
        assert delivery.status == "sent" and delivery.provider_message_id == provider_ids[delivery.to_address]


def _answer(body) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.encoding = 200, json.dumps(body).encode(), "utf-8"
    return response


def _statuses(status: dict) -> dict:
    return {address: (s.message_id, s.status) for address, s in status.items()}


@pytest.mark.parametrize("to, answer, quick", [
    ("a@example.org", {"ErrorCode": 0, "Message": "OK", "MessageID": "id-1", "To": "a@example.org"}, True),
    ("A.B+x@Example.org", {"ErrorCode": 0, "Message": "OK", "MessageID": "id-2", "To": "A.B+x@Example.org"}, True),
    # anymail's own reading for anything else: another spelling, a delay, inactive addresses, a display name
    ("a@example.org", {"ErrorCode": 0, "Message": "OK", "MessageID": "id-3", "To": "A@example.org"}, False),
    ("a@example.org", {"ErrorCode": 0, "Message": "Message accepted, but delivery may be delayed.",
                       "MessageID": "id-4", "To": "a@example.org"}, False),
    ("a@example.org", {"ErrorCode": 0, "MessageID": "id-5", "To": "a@example.org",
                       "Message": "Message OK, but will not deliver to these inactive addresses: a@example.org. "
                                  "Inactive recipients are ones that have generated a hard bounce or a spam complaint."},
     False),
    ("a@example.org", {"ErrorCode": 0, "Message": "OK", "MessageID": "id-6", "To": "Ann <a@example.org>"}, False),
    ('"a b"@example.org', {"ErrorCode": 0, "Message": "OK", "MessageID": "id-7", "To": '"a b"@example.org'}, False),
    ("a@example.org", {"ErrorCode": 0, "Message": "OK", "MessageID": "id-8"}, False),
])
def test_a_plain_acceptance_is_read_as_anymail_reads_it_and_anything_else_is_left_to_anymail(
        postmark_backend, to, answer, quick):
    """Provider.single_recipient_status reads Postmark's answer to a one-email call without anymail's
    address parser only where the result is the same as anymail's; else it says None."""
    from django.core.mail import EmailMessage

    postmark, backend = providers.configured(), postmark_backend
    message = EmailMessage("Subject", "Body", "from@example.org", [to])
    payload = backend.build_message_payload(message, backend.send_defaults)
    status = postmark.single_recipient_status(_answer(answer), payload, message, backend)
    assert (status is not None) == quick
    if quick:
        assert _statuses(status) == _statuses(backend.parse_recipient_status(_answer(answer), payload, message))
        assert list(status) == [to]


def test_the_sender_reads_answers_the_quick_way_and_a_refused_address_still_fails(postmark, fast_sending, settings,
                                                                                   monkeypatch):
    """Through the pipeline, one call per email to the fake Postmark: accepted emails are read the
    quick way and sent with the provider's ids; an inactive address is still read (by anymail) as
    refused, and its delivery fails."""
    settings.NURTURE_BATCH_SEND = False
    quick = answered_by(monkeypatch, "single_recipient_status")
    ids = varied_deliveries()
    postmark.state.inactive.add("c@example.org")
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 6, "failed": 1}
    assert Delivery.objects.get(subscriber__email="c@example.org").status == "failed"
    assert set(Delivery.objects.filter(status="sent").values_list("provider_message_id", flat=True)) == {
        d["provider_id"] for d in postmark.state.delivered}
    assert quick.count(True) == 6 and quick.count(False) == 1
