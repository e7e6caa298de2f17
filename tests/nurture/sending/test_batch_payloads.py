"""A messages batch builds the first message through anymail's payload code and derives the next
ones from it (providers.Provider.batch_message_like): each derived message must be exactly what
anymail's payload code would have built for it, and anything it cannot derive exactly is left to
anymail."""
from __future__ import annotations

import json

import pytest
from django.core.mail import get_connection

from nurture import providers
from nurture.emails.encoded import Marked, json_strings_of
from nurture.emails.messages import build_delivery_email
from nurture.models import CarerHandoff, Delivery
from nurture.sending.batch_calls import _MessagesBatchPayload
from nurture.services import planning
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.fixture
def postmark_backend(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    return get_connection()


def series_emails() -> list:
    """Series emails as the sender builds them: a named subscriber, one with a non-ASCII name,
    one reading plain text, one larger text, and a carer's copy."""
    from django.utils import timezone

    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    people = [
        active_subscriber("a@example.org", the_series, first_name="Ana"),
        active_subscriber("b@example.org", the_series, first_name="Zoë \"<b>\""),
        active_subscriber("c@example.org", the_series, plain_text=True),
        active_subscriber("d@example.org", the_series, larger_text=True),
    ]
    now = timezone.now()
    CarerHandoff.objects.create(subscriber=people[0], carer_email="carer@example.org", status="active", mode="as_well",
                                carer_confirmed_at=now, subscriber_confirmed_at=now)
    planning.deliveries_plan_due()
    messages = []
    for delivery in Delivery.objects.select_related("subscriber", "step__series", "carer_handoff").order_by("id"):
        message = build_delivery_email(delivery)
        providers.message_stream_set(message, stream=providers.BULK)
        messages.append(message)
    return messages


def test_each_derived_postmark_message_is_what_anymail_builds_for_it(postmark_backend):
    postmark = providers.configured()
    messages = series_emails()
    assert len(messages) == 5
    built = [postmark_backend.build_message_payload(m, postmark_backend.send_defaults).data for m in messages]
    template = (messages[0], built[0])
    for message, expected in zip(messages[1:], built[1:]):
        assert postmark.batch_message_like(template, message, postmark_backend.send_defaults) == expected
    by_to = {data["To"]: data for data in built}
    assert "HtmlBody" not in by_to["c@example.org"] and "HtmlBody" in by_to["b@example.org"]  # plain text: no HTML
    assert "carer@example.org" in by_to


def test_what_cannot_be_derived_exactly_is_left_to_anymail(postmark_backend):
    postmark = providers.configured()
    first, other = series_emails()[:2]
    template = (first, postmark_backend.build_message_payload(first, postmark_backend.send_defaults).data)
    defaults = postmark_backend.send_defaults

    other.to = ["Someone <b@example.org>"]  # a display name: anymail formats it
    assert postmark.batch_message_like(template, other, defaults) is None
    other.to = ["b@exämple.org"]  # an international domain: anymail encodes it
    assert postmark.batch_message_like(template, other, defaults) is None
    other.to = ["b@example.org"]
    other.reply_to = ["elsewhere@example.org"]  # not the template's
    assert postmark.batch_message_like(template, other, defaults) is None
    other.reply_to = list(first.reply_to)
    other.extra_headers["Reply-To"] = "elsewhere@example.org"  # a header anymail reads as an address
    assert postmark.batch_message_like(template, other, defaults) is None
    del other.extra_headers["Reply-To"]
    assert postmark.batch_message_like(template, other, {**defaults, "metadata": {"x": "1"}}) is None
    assert postmark.batch_message_like(template, other, defaults) is not None
    # A provider that derives nothing leaves every message to anymail.
    assert providers.Provider().batch_message_like(template, other, defaults) is None


def test_the_batch_request_writes_each_body_from_its_render_s_json_and_is_what_json_dumps_writes(postmark_backend):
    # nurture/emails/encoded.py: each body that is still the very string the builder rendered is
    # written from the JSON joined at render time; the request must be byte for byte anymail's.
    postmark = providers.configured()
    messages = series_emails()
    first = postmark_backend.build_message_payload(messages[0], postmark_backend.send_defaults)
    datas = [first.data] + [postmark.batch_message_like((messages[0], first.data), m, postmark_backend.send_defaults)
                            for m in messages[1:]]
    anymail_json = first.serialize_json(postmark.batch_body(datas))
    request = _MessagesBatchPayload(first, list(zip(datas, messages)), postmark)
    assert request.get_request_params(postmark_backend.api_url)["data"] == anymail_json.encode()
    marks = Marked()
    for data, message in zip(datas, messages):
        marks.mark(data, json_strings_of(message))
    # Text and HTML of the two plain subscribers, the text of plain-text and larger-text ones (the
    # larger-text HTML is changed after rendering, the carer's copy is built apart): six bodies.
    assert len(marks) == 6

    # A body changed since it was rendered (an equal string, another object) is serialised as it is.
    datas[1]["TextBody"] = "".join(list(datas[1]["TextBody"])) + " (changed)"
    # A value that reads like a mark makes the marks ambiguous: the whole request is serialised plainly.
    datas[2]["Subject"] = "\x00nurture-json-0\x00"
    assert request.serialised() == first.serialize_json(postmark.batch_body(datas))
    assert json.loads(request.serialised())[1]["TextBody"].endswith(" (changed)")
