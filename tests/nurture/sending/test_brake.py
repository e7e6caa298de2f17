"""The complaint brake (services/brake.py): a burst of complaint events through anymail's real
Postmark webhook view pauses series sending for everyone (service emails go on), staff are emailed,
and it holds until a staff member resumes it in the admin (audited)."""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from nurture import metrics
from nurture.models import AuditEntry, Delivery, SendingBrake
from nurture.selectors.deliveries import sending_brake_engaged
from nurture.services import brake, planning, reconcile, signup
from nurture import sending
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import staff_user, verified_login

from tests.nurture.sending.conftest import WEBHOOK_SECRET as SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick(fast_sending, settings):
    settings.NURTURE_BRAKE_MIN_EMAILS = 20
    settings.NURTURE_BRAKE_COMPLAINT_RATE = 0.1  # over 2 complaints in 20
    settings.NURTURE_BRAKE_HARD_BOUNCE_RATE = 0.2
    settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS = 0


def sent(n: int) -> list[Delivery]:
    the_series = series("in_treatment", [(0, ["first-article"]), (0, ["second-article"])])
    for i in range(n):
        active_subscriber(f"r{i}@example.org", the_series)
    planning.deliveries_plan_due()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": n}
    return list(Delivery.objects.select_related("subscriber").order_by("id"))


def webhook(client, payload):
    answer = client.post("/anymail/postmark/tracking/", data=json.dumps(payload), content_type="application/json",
                         HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
    assert answer.status_code == 200, answer.content


def complaint(delivery, event_id: int) -> dict:
    return {
        "RecordType": "SpamComplaint", "MessageStream": "broadcast", "ID": event_id, "Type": "SpamComplaint",
        "TypeCode": 512, "MessageID": delivery.provider_message_id, "Metadata": {"delivery": str(delivery.pk)},
        "ServerID": 1, "Description": "", "Details": "", "Email": delivery.subscriber.email, "From": "guide@example.org",
        "BouncedAt": "2026-11-05T16:33:54Z", "Inactive": True, "CanActivate": False, "Subject": "Step 1",
    }


def hard_bounce(delivery, event_id: int) -> dict:
    return {**complaint(delivery, event_id), "RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1,
            "Description": "unknown user", "Details": "smtp;550"}


def test_a_burst_of_complaints_pauses_series_sending_until_staff_resume_it(
    postmark, client, settings, redis_url, django_capture_on_commit_callbacks,
):
    deliveries = sent(20)
    staff = staff_user("watcher", "Subscriber care", email="watcher@staff.example.org")
    for n, delivery in enumerate(deliveries[:2]):
        webhook(client, complaint(delivery, 100 + n))
    assert sending_brake_engaged() is None  # 2 in 20 is the limit, not above it
    calls_before = len(postmark.state.calls)
    with django_capture_on_commit_callbacks(execute=True):
        webhook(client, complaint(deliveries[2], 102))
    engaged = sending_brake_engaged()
    assert engaged is not None and engaged.complaints == 3 and engaged.emails == 20
    assert "complaint rate 15.00%" in engaged.reason and "@" not in engaged.reason
    # Staff with the overview permission are emailed, on the transactional stream.
    [alert] = postmark.state.calls[calls_before:]
    assert alert["MessageStream"] == "outbound" and "watcher@staff.example.org" in alert["Bcc"]
    assert "in_treatment" not in json.dumps(alert)

    # Series sending holds: nothing is planned, a send task leaves its rows queued, no sweep.
    planning_result = planning.deliveries_plan_due(now=timezone.now() + timedelta(days=1))
    assert planning_result.planned == 0
    Delivery.objects.filter(pk=deliveries[5].pk).update(status="queued", sent_at=None, provider_message_id="")
    calls = len(postmark.state.calls)
    assert sending.deliveries_send(delivery_ids=[deliveries[5].pk]).counts == {"braked": 1}
    assert Delivery.objects.get(pk=deliveries[5].pk).status == "queued" and len(postmark.state.calls) == calls
    enqueued = []
    reconcile.deliveries_reconcile(now=timezone.now() + timedelta(hours=1), enqueue=enqueued.extend, queue_length=lambda: 0)
    assert enqueued == []
    # Service emails go on.
    settings.CELERY_BROKER_URL = redis_url
    assert signup.subscriber_new_links_email(subscriber_id=deliveries[7].subscriber_id).sent
    assert postmark.state.calls[-1]["MessageStream"] == "outbound"

    # It stays tripped: days later, with no new complaint, and with more events.
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert brake.sending_brake_check() == engaged
        webhook(client, complaint(deliveries[3], 103))
    assert SendingBrake.objects.count() == 1 and sending_brake_engaged() == engaged

    # /metrics shows it.
    text = metrics.render().decode()
    assert "nurture_series_sending_braked 1.0" in text and "nurture_series_complaint_rate 0.2" in text

    # A staff member resumes it in the admin: audited, and the queued delivery goes out.
    admin = verified_login(client, staff)
    answer = admin.post(reverse("admin:nurture_sendingbrake_changelist"),
                        {"action": "resume", "_selected_action": [engaged.pk]})
    assert answer.status_code == 302
    assert sending_brake_engaged() is None
    engaged.refresh_from_db()
    assert engaged.resumed_by == staff and engaged.resumed_at is not None
    entry = AuditEntry.objects.get(detail=f"series sending resumed (brake #{engaged.pk})")
    assert entry.user_id == staff.pk and entry.action == "change"
    assert sending.deliveries_send(delivery_ids=[deliveries[5].pk]).counts == {"sent": 1}
    # What tripped it once does not trip it again: the window starts at the resume.
    webhook(client, complaint(deliveries[4], 104))
    assert sending_brake_engaged() is None


def test_hard_bounces_trip_it_too_and_soft_ones_do_not(postmark, client):
    deliveries = sent(20)
    for n, delivery in enumerate(deliveries[:6]):
        webhook(client, {**hard_bounce(delivery, 200 + n), "Type": "SoftBounce", "TypeCode": 4096})
    assert sending_brake_engaged() is None
    for n, delivery in enumerate(deliveries[:5]):
        webhook(client, hard_bounce(delivery, 300 + n))
    engaged = sending_brake_engaged()
    assert engaged is not None and engaged.hard_bounces == 5 and "hard-bounce rate 25.00%" in engaged.reason


def test_too_few_emails_never_trip_it(postmark, client, settings):
    settings.NURTURE_BRAKE_MIN_EMAILS = 500
    deliveries = sent(10)
    for n, delivery in enumerate(deliveries):
        webhook(client, complaint(delivery, 400 + n))
    assert sending_brake_engaged() is None


def test_only_staff_with_the_permission_can_resume(postmark, client):
    SendingBrake.objects.create(reason="complaint rate test", emails=500, complaints=9, hard_bounces=0)
    auditor = staff_user("auditor", "Auditors")
    admin = verified_login(client, auditor)
    brake_id = SendingBrake.objects.get().pk
    page = admin.get(reverse("admin:nurture_sendingbrake_changelist"))
    assert page.status_code == 200 and b"Resume series sending" not in page.content
    admin.post(reverse("admin:nurture_sendingbrake_changelist"), {"action": "resume", "_selected_action": [brake_id]})
    assert sending_brake_engaged() is not None
    assert not AuditEntry.objects.filter(detail__startswith="series sending resumed").exists()


def test_the_overview_shows_the_brake_and_the_days_figures(admin_client):
    SendingBrake.objects.create(reason="complaint rate 0.20% over 1000 series emails in a day (limit 0.10%)",
                                emails=1000, complaints=2, hard_bounces=0)
    page = admin_client.get(reverse("nurture_overview")).content.decode()
    assert "paused by the complaint brake" in page and "complaint rate 0.20%" in page
