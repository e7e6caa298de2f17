"""Provider webhooks through anymail's real Postmark tracking view: real Postmark-format JSON posted
to /anymail/postmark/tracking/ with HTTP basic auth, for deliveries sent through anymail's real
Postmark backend to the fake provider (so the provider message ids are the ones Postmark's API
returned)."""
from __future__ import annotations

import base64
import json

import pytest

from nurture.models import StepDailyResults
from nurture.services.results import results_summarise
from nurture.selectors.subscribers import is_suppressed
from config.checks import environment_values, production_placeholders
from nurture.models import Delivery, ProviderEvent, Subscriber, Suppression
from nurture.services import planning
from nurture import sending
from support.fake_provider import FakeProvider
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

URL = "/anymail/postmark/tracking/"
SECRET = "postmark-hook:correct-horse-battery"


def auth(secret: str = SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.NURTURE_DAY_SECONDS = 10  # no daytime window; 2-step series, step 2 after 0 days
    settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS = 0
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.NURTURE_SENDS_PER_SECOND = 1000.0
    settings.NURTURE_TRACK_OPENS = True
    settings.NURTURE_TRACK_CLICKS = True


@pytest.fixture
def sent(settings):
    """Two subscribers, each sent step 1 through anymail's Postmark backend; returns their deliveries."""
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url, "WEBHOOK_SECRET": SECRET}
        the_series = series("in_treatment", [(0, ["first-article"]), (0, ["second-article"])])
        for email in ("bounce.me@example.org", "stays@example.org"):
            active_subscriber(email, the_series)
        planning.deliveries_plan_due()
        outcome = sending.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))
        assert outcome.counts == {"sent": 2}
    deliveries = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    assert all(d.provider_message_id for d in deliveries.values())
    return deliveries


def post(client, payload, **extra):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return client.post(URL, data=body, content_type="application/json", **{**auth(), **extra})


# Postmark's documented webhook payloads (trimmed of fields anymail does not read).
def bounce(delivery, *, event_id=4323372036854775807, kind="HardBounce", description=None):
    return {
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": event_id, "Type": kind, "TypeCode": 1,
        "Name": "Hard bounce", "Tag": "", "MessageID": delivery.provider_message_id, "Metadata": {}, "ServerID": 23,
        "Description": description or "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": f"smtp;550 5.1.1 <{delivery.subscriber.email}>: Recipient address rejected",
        "Email": delivery.subscriber.email, "From": "guide@example.org", "BouncedAt": "2026-11-05T16:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Step 1",
    }


def complaint(delivery, *, event_id=42):
    return {
        "RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": event_id, "Type": "SpamComplaint",
        "TypeCode": 512, "Name": "Spam complaint", "Tag": "", "MessageID": delivery.provider_message_id,
        "Metadata": {}, "ServerID": 1234, "Description": "", "Details": "Test spam complaint details",
        "Email": delivery.subscriber.email, "From": "guide@example.org", "BouncedAt": "2026-11-05T16:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": False, "Subject": "Step 1",
    }


def engagement(delivery, record_type="Open", *, at="2026-11-05T16:33:54.9070259Z"):
    payload = {
        "RecordType": record_type, "MessageStream": "outbound", "Metadata": {}, "Recipient": delivery.subscriber.email,
        "MessageID": delivery.provider_message_id, "ReceivedAt": at, "Platform": "WebMail", "Tag": "",
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0)", "Geo": {"City": "Somewhere", "IP": "192.0.2.1"},
    }
    if record_type == "Open":
        payload.update(FirstOpen=True, ReadSeconds=5)
    if record_type == "Click":
        payload.update(ClickLocation="HTML", OriginalLink="https://guide.example.org/preferences/secret-token/")
    if record_type == "Delivery":
        payload = {k: v for k, v in payload.items() if k not in ("ReceivedAt", "UserAgent", "Geo", "Platform")}
        payload.update(DeliveredAt=at, Details="Test delivery webhook details")
    return payload


def newly_planned() -> set[str]:
    """Make everyone with a next send due now, run the planner, and return who got a new delivery."""
    Subscriber.objects.exclude(next_send_at=None).update(next_send_at=planning.timezone.now())
    before = set(Delivery.objects.values_list("id", flat=True))
    planning.deliveries_plan_due()
    return set(Delivery.objects.exclude(id__in=before).values_list("subscriber__email", flat=True))


def stored_fields_text() -> str:
    return json.dumps(list(ProviderEvent.objects.values()), default=str)


def test_a_hard_bounce_suppresses_the_address_and_the_planner_stops_planning_them(client, sent):
    bounced = sent["bounce.me@example.org"]
    response = post(client, bounce(bounced))
    assert response.status_code == 200
    subscriber = Subscriber.objects.get(pk=bounced.subscriber_id)
    assert subscriber.status == "suppressed" and subscriber.next_send_at is None
    assert is_suppressed(email="Bounce.Me@example.org")
    event = ProviderEvent.objects.get()
    assert (event.provider, event.event_type, event.delivery_id) == ("postmark", "bounced", bounced.pk)
    assert event.event_id == "4323372036854775807" and event.suppressed_address
    # Step 2 is due for both; only the one who did not bounce gets it.
    assert newly_planned() == {"stays@example.org"}
    # Health-data rule: no address, no SMTP details with the address, no raw payload.
    assert "bounce.me" not in stored_fields_text() and "smtp;550" not in stored_fields_text()


def test_a_spam_complaint_suppresses_the_address(client, sent):
    response = post(client, complaint(sent["bounce.me@example.org"]))
    assert response.status_code == 200
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "suppressed"
    assert Suppression.objects.get().reason == "spam complaint (postmark webhook)"
    assert Subscriber.objects.get(email="stays@example.org").status == "active"


def test_a_soft_bounce_is_stored_but_does_not_suppress(client, sent):
    response = post(client, bounce(sent["bounce.me@example.org"], kind="SoftBounce"))
    assert response.status_code == 200
    event = ProviderEvent.objects.get()
    assert event.event_type == "bounced" and not event.suppressed_address
    assert not Suppression.objects.exists()
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "active"


def test_a_provider_side_unsubscribe_suppresses(client, sent):
    delivery = sent["bounce.me@example.org"]
    change = {
        "RecordType": "SubscriptionChange", "MessageID": delivery.provider_message_id, "ServerID": 23,
        "MessageStream": "outbound", "ChangedAt": "2026-11-05T10:53:34.416071Z", "Recipient": delivery.subscriber.email,
        "Origin": "Recipient", "SuppressSending": True, "SuppressionReason": "ManualSuppression", "Tag": "", "Metadata": {},
    }
    assert post(client, change).status_code == 200
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "suppressed"


def test_a_duplicate_webhook_changes_nothing(client, sent):
    delivery = sent["bounce.me@example.org"]
    for payload in (bounce(delivery), engagement(delivery, "Open")):
        assert post(client, payload).status_code == 200
    before = (stored_fields_text(), list(Suppression.objects.values()))
    for payload in (bounce(delivery), engagement(delivery, "Open")):
        assert post(client, payload).status_code == 200  # the provider retried a webhook it thought lost
    assert ProviderEvent.objects.count() == 2
    assert (stored_fields_text(), list(Suppression.objects.values())) == before


def step_figures(step_id: int) -> dict:
    """The step's figures as the results page reads them: the daily summary, brought up to date."""
    results_summarise(rebuild=True)
    rows = StepDailyResults.objects.filter(step_id=step_id)
    return {f: sum(getattr(r, f) for r in rows) for f in ("sent", "delivered", "opened", "clicked", "bounced")}


def test_opens_and_clicks_feed_the_step_figures_once_per_delivery(client, sent, settings):
    settings.NURTURE_TRACK_OPENS = settings.NURTURE_TRACK_CLICKS = True
    delivery, other = sent["bounce.me@example.org"], sent["stays@example.org"]
    step_id = delivery.step_id
    assert step_figures(step_id) == {"sent": 2, "delivered": 0, "opened": 0, "clicked": 0, "bounced": 0}
    post(client, engagement(delivery, "Delivery"))
    post(client, engagement(delivery, "Open"))
    figures = step_figures(step_id)
    assert (figures["delivered"], figures["opened"], figures["clicked"]) == (1, 1, 0)
    post(client, engagement(delivery, "Open", at="2026-11-06T09:00:00Z"))  # the same reader again
    post(client, engagement(other, "Open"))
    post(client, engagement(other, "Click"))
    figures = step_figures(step_id)
    assert (figures["opened"], figures["clicked"]) == (2, 1)
    assert ProviderEvent.objects.filter(event_type="opened").count() == 3
    # The click's URL (a personal preference link), user agent and location are not kept.
    assert "secret-token" not in stored_fields_text() and "Mozilla" not in stored_fields_text()
    assert "192.0.2.1" not in stored_fields_text()


def test_opens_and_clicks_are_not_kept_while_tracking_is_off(client, sent, settings):
    settings.NURTURE_TRACK_OPENS = False
    settings.NURTURE_TRACK_CLICKS = False
    delivery = sent["bounce.me@example.org"]
    for record_type in ("Open", "Click"):
        assert post(client, engagement(delivery, record_type)).status_code == 200
    assert not ProviderEvent.objects.exists()
    assert post(client, engagement(delivery, "Delivery")).status_code == 200
    assert ProviderEvent.objects.get().event_type == "delivered"


@pytest.mark.parametrize("credentials", [None, "postmark-hook:wrong", "someone:" + SECRET.split(":")[1]])
def test_wrong_or_missing_credentials_are_refused_and_nothing_is_stored(client, sent, credentials):
    headers = {"HTTP_AUTHORIZATION": ""} if credentials is None else auth(credentials)
    response = client.post(URL, data=json.dumps(bounce(sent["bounce.me@example.org"])), content_type="application/json", **headers)
    assert response.status_code in (400, 403)
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "active"


def test_wrong_credentials_are_a_one_line_warning_not_an_error_with_a_traceback(client, sent):
    import logging

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.records = []

        def emit(self, record):
            self.records.append(record)

    keep = Keep()
    django_logger = logging.getLogger("django")  # where Django's records go (it does not propagate to the root)
    django_logger.addHandler(keep)
    try:
        response = client.post(URL, data=json.dumps(bounce(sent["bounce.me@example.org"])), content_type="application/json",
                               **auth("postmark-hook:wrong"))
    finally:
        django_logger.removeHandler(keep)
    assert response.status_code in (400, 403)
    security = [r for r in keep.records if r.name.startswith("django.security")]
    assert security, [r.name for r in keep.records]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in security)
    assert not [r for r in keep.records if r.levelno >= logging.ERROR]


def test_without_a_webhook_secret_the_webhook_is_off(client, sent, settings):
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token"}
    response = client.post(URL, data=json.dumps(bounce(sent["bounce.me@example.org"])), content_type="application/json")
    assert response.status_code == 404
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()


def test_an_unknown_message_id_is_stored_without_a_delivery(client, sent):
    orphan = bounce(sent["bounce.me@example.org"], event_id=99)
    orphan.update(MessageID="not-one-of-ours", Email="stranger@example.net")
    assert post(client, orphan).status_code == 200
    event = ProviderEvent.objects.get()
    assert event.delivery is None and event.provider_message_id == "not-one-of-ours"
    # Not a message we sent: stored for staff, not acted on (tests/nurture/webhooks/test_matching.py).
    assert not event.matched and not is_suppressed(email="stranger@example.net")
    assert Subscriber.objects.get(email="bounce.me@example.org").status == "active"


def test_addresses_in_the_description_are_removed(client, sent):
    delivery = sent["bounce.me@example.org"]
    post(client, bounce(delivery, description=f"Mailbox {delivery.subscriber.email} does not exist"))
    assert ProviderEvent.objects.get().description == "Mailbox [address] does not exist"


@pytest.mark.parametrize(
    "payload",
    [
        "not json at all",
        "[1, 2, 3]",
        "{}",
        '{"RecordType": "Bounce"}',
        '{"RecordType": "Bounce", "Type": "HardBounce", "ID": {"odd": 1}, "MessageID": 123, "Email": ["x"], "BouncedAt": "yesterday"}',
        '{"RecordType": "Open", "MessageID": null, "ReceivedAt": "2026-13-45T99:00:00Z"}',
        '{"RecordType": "Delivery", "MessageID": "' + "x" * 5000 + '", "DeliveredAt": 12}',
        '{"FromFull": {"Email": "a@example.org"}, "Subject": "an inbound message sent to the tracking URL"}',
        '"just a string"',
        # NUL characters, which PostgreSQL text refuses: in the message id, the address, the event id, the description.
        '{"RecordType": "Bounce", "Type": "HardBounce", "ID": "7\\u0000", "MessageID": "pm\\u0000id", "Email": "a\\u0000@example.org", "Description": "\\u0000"}',
        '{"RecordType": "Delivery", "Recipient": "a\\u0000b@example.org", "MessageID": "\\u0000", "DeliveredAt": "2026-01-01T00:00:00Z"}',
    ],
)
def test_odd_payloads_never_cause_a_500(client, sent, payload):
    response = post(client, payload)  # the test client re-raises any exception a 500 would hide
    assert response.status_code in (200, 400)
    assert Subscriber.objects.filter(status="active").count() == 2


def test_event_without_an_address_or_delivery_suppresses_nobody(client, sent):
    response = post(client, '{"RecordType": "Bounce", "Type": "HardBounce", "ID": 7, "MessageID": "unknown"}')
    assert response.status_code == 200
    event = ProviderEvent.objects.get()
    assert event.event_type == "bounced" and not event.suppressed_address
    assert not Suppression.objects.exists()


def test_two_causes_for_one_address_make_one_suppression(client, sent):
    delivery = sent["bounce.me@example.org"]
    post(client, bounce(delivery))
    post(client, complaint(delivery))
    assert ProviderEvent.objects.filter(suppressed_address=True).count() == 2
    assert Suppression.objects.filter(email__iexact="BOUNCE.ME@example.org").count() == 1
    assert Suppression.objects.get().reason == "hard bounce (postmark webhook)"  # the first cause is kept


def test_webhook_secret_checks(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "no-colon-here"}
    assert "nurture.E020" in [e.id for e in environment_values()]
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    assert "nurture.E020" not in [e.id for e in environment_values()]
    settings.DEBUG = False
    assert "nurture.W020" not in [w.id for w in production_placeholders()]
    settings.ANYMAIL = {}
    assert "nurture.W020" in [w.id for w in production_placeholders()]


def test_staff_see_events_read_only_and_the_step_figures_page_is_retired(admin_client, sent):
    delivery = sent["bounce.me@example.org"]
    anonymous_client = type(admin_client)()
    post(anonymous_client, engagement(delivery, "Delivery"))
    post(anonymous_client, engagement(delivery, "Open"))
    post(anonymous_client, bounce(sent["stays@example.org"]))

    events = admin_client.get("/admin/nurture/providerevent/")
    assert events.status_code == 200
    page = events.content.decode()
    assert "bounced" in page and "opened" in page and "stays@example.org" not in page
    assert admin_client.get("/admin/nurture/providerevent/add/").status_code == 403

    # The "Step figures" page showed raw counts (to content editors too): retired; the
    # results page covers it with small cells protected (tests/nurture/admin/test_small_cells.py).
    assert admin_client.get("/admin/nurture/stepfigures/").status_code == 404
    assert step_figures(delivery.step_id)["sent"] == 2
