"""Care features through the public pages with a real Celery worker and beat over real Redis and
PostgreSQL (the shared ones, tests/e2e/conftest.py; a series "day" is one second, so a 2-week pause lasts 14 seconds: time travel by short days).

- pause from an email's link, nothing sent while paused, automatic resume at the step where it
  stopped, with the "welcome back" line;
- a carer gets nothing until they (and, for "instead of me", the subscriber) confirm from their own
  inboxes; then the carer's copy is its own delivery, built for them; the subscriber is told of
  each step; the carer's one-click stops only the carer's copies;
- a treatment date given at sign-up front-loads the "before treatment" steps in real planning."""
from __future__ import annotations

import datetime as dt
import email
import re
import time
from email import policy
from pathlib import Path

import pytest
from django.utils import timezone

from nurture import tokens
from nurture.models import CarerHandoff, ConsentRecord, Delivery, Step, Subscriber
from tests.e2e.conftest import DAY_SECONDS  # the shared stack's series "day"
from support.workers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def messages(outbox: Path, to: str | None = None):
    files = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    found = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]
    return [m for m in found if to is None or to in str(m["To"])]


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def stack(live_stack):
    """The shared worker and beat (tests/e2e/conftest.py): the outbox their emails land in."""
    return live_stack


def sign_up_and_confirm(client, outbox: Path, address: str, **extra) -> Subscriber:
    response = client.post("/", {"email": address, "stage": "recently_diagnosed", "language": "en", "consent": "on", **extra})
    assert response.status_code == 302, response.content[:2000]
    confirmation = wait_for(lambda: messages(outbox, address), timeout=60, message="the confirmation email")[0]
    confirm_url = re.search(r"https://guide\.example\.org(/confirm/[^/\s]+/)", text_of(confirmation)).group(1)
    assert client.post(confirm_url).status_code == 200
    return Subscriber.objects.get(email=address)


def test_pause_from_the_email_link_then_automatic_resume_where_it_stopped(stack, client):
    outbox = stack
    subscriber = sign_up_and_confirm(client, outbox, "pia@example.org")
    first = wait_for(lambda: messages(outbox, "pia@example.org")[1:], timeout=60, message="the first series email")[0]
    pause_url = re.search(r"https://guide\.example\.org(/pause/[^/\s]+/)", text_of(first)).group(1)

    assert client.get(pause_url).status_code == 200  # opening the link changes nothing
    assert Subscriber.objects.get(pk=subscriber.pk).status == "active"
    assert client.post(pause_url, {"weeks": "3"}).status_code == 400  # not offered: nothing changes
    assert Subscriber.objects.get(pk=subscriber.pk).status == "active"
    paused_at = timezone.now()
    page = client.post(pause_url, {"weeks": "2"})
    assert page.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "paused"
    assert subscriber.paused_until >= paused_at + dt.timedelta(seconds=14 * DAY_SECONDS)
    count_at_pause = len(messages(outbox, "pia@example.org"))
    sent_steps = set(Delivery.objects.filter(subscriber=subscriber, status="sent").values_list("step__position", flat=True))

    time.sleep(8)  # the next step (3 days) was due in this time; paused: nothing goes
    assert len(messages(outbox, "pia@example.org")) == count_at_pause
    assert Subscriber.objects.get(pk=subscriber.pk).status == "paused"

    after = wait_for(lambda: messages(outbox, "pia@example.org")[count_at_pause:], timeout=60, message="the email after the pause")[0]
    subscriber.refresh_from_db()
    assert subscriber.status == "active" and subscriber.paused_until is None
    resumed = Delivery.objects.filter(subscriber=subscriber, status="sent").exclude(step__position__in=sent_steps).order_by("sent_at").first()
    assert resumed.sent_at >= paused_at + dt.timedelta(seconds=14 * DAY_SECONDS)
    assert resumed.step.position == max(sent_steps) + 1  # where it stopped, nothing skipped
    assert resumed.welcome_back and "welcome back" in text_of(after)
    kinds = list(ConsentRecord.objects.filter(subscriber=subscriber).values_list("kind", "source"))
    assert ("pause", "pause_link") in kinds and ("resume", "automatic") in kinds and not any(k == "unsubscribe" for k, _ in kinds)


def series_emails(outbox: Path, to: str):
    subjects = set(Step.objects.values_list("subject", flat=True))
    return [m for m in messages(outbox, to) if m["Subject"] in subjects]


def link_in(message, route: str) -> str:
    return re.search(rf"https://guide\.example\.org(/{route}/[^/\s]+/)", text_of(message)).group(1)


def test_carer_copy_travels_as_its_own_delivery_and_the_subscriber_stays_in_charge(stack, client):
    """The carer hand-off through real workers: the subscriber is told of each step; "instead of me" waits for
    the subscriber's own confirmation; the carer's copy is its own delivery, built for the carer
    (one To, their own stop link as List-Unsubscribe); the carer's one-click stops only their copies."""
    outbox = stack
    subscriber = sign_up_and_confirm(client, outbox, "rosa@example.org", first_name="Rosa")
    wait_for(lambda: series_emails(outbox, "rosa@example.org"), timeout=60, message="the first series email")
    prefs = f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)}/"

    refused = client.post(prefs, {"action": "carer", "carer_email": "ROSA@example.org", "mode": "instead"})
    assert refused.status_code == 400 and not CarerHandoff.objects.exists()
    assert client.post(prefs, {"action": "carer", "carer_email": "tom@example.org", "mode": "instead"}).status_code == 200

    ask = wait_for(lambda: messages(outbox, "tom@example.org"), timeout=60, message="the carer's confirmation email")[0]
    body = text_of(ask)
    assert "Rosa asked us" in body and "second opinion" in body
    assert "rosa@example.org" not in ask.as_string()  # no subscriber address in the carer's email
    assert "recently" not in body.lower() and "diagnos" not in body.lower()  # no stage in that email
    notice = wait_for(lambda: [m for m in messages(outbox, "rosa@example.org") if "/carer/approve/" in text_of(m)],
                      timeout=60, message="the subscriber's notice of the request")[0]
    assert "tom@example.org" in text_of(notice) and "/carer/cancel/" in text_of(notice)

    # The carer agrees; "instead of me" still waits for Rosa, whose series goes on to her only.
    confirm_url = link_in(ask, "carer/confirm")
    assert client.get(confirm_url).status_code == 200
    assert CarerHandoff.objects.get().status == "pending"  # opening the link confirms nothing
    assert client.post(confirm_url).status_code == 200
    assert CarerHandoff.objects.get().status == "pending"
    assert [m["Subject"] for m in messages(outbox, "tom@example.org")] == [ask["Subject"]]
    assert client.post(link_in(notice, "carer/approve")).status_code == 200  # Rosa, from her own inbox
    assert CarerHandoff.objects.get().status == "active"
    wait_for(lambda: [m for m in messages(outbox, "rosa@example.org") if "now go to tom@example.org" in text_of(m)],
             timeout=60, message="the subscriber's notice that the hand-off is in force")

    copy = wait_for(lambda: series_emails(outbox, "tom@example.org"), timeout=60, message="a series email to the carer")[0]
    delivery = Delivery.objects.get(message_id=copy["Message-ID"])
    assert delivery.carer_handoff_id == CarerHandoff.objects.get().pk and delivery.status == "sent"
    assert str(copy["To"]) == "tom@example.org" and "rosa@example.org" not in copy.as_string()
    assert not Delivery.objects.filter(subscriber=subscriber, step=delivery.step, carer_handoff__isnull=True).exists()
    unsubscribe = re.search(r"<https://guide\.example\.org(/carer/stop/[^>]+/)>", str(copy["List-Unsubscribe"])).group(1)
    for route in ("preferences", "pause", "unsubscribe"):
        assert f"/{route}/" not in text_of(copy)

    # The carer's mail client's one-click: the hand-off ends, Rosa stays subscribed and is told.
    assert client.post(unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert CarerHandoff.objects.get().status == "stopped"
    assert Subscriber.objects.get(pk=subscriber.pk).status == "active"
    wait_for(lambda: [m for m in messages(outbox, "rosa@example.org") if "no longer go to tom@example.org" in text_of(m)],
             timeout=60, message="the subscriber's notice that the hand-off stopped")
    kinds = list(ConsentRecord.objects.filter(subscriber=subscriber).values_list("kind", flat=True))
    assert kinds.index("carer_requested") < kinds.index("carer_confirmed") < kinds.index("carer_stopped")


def test_treatment_date_at_sign_up_front_loads_the_before_treatment_steps(stack, client):
    outbox = stack
    soon = timezone.localdate() + dt.timedelta(days=30)
    subscriber = sign_up_and_confirm(client, outbox, "lia@example.org", treatment_date=soon.isoformat())
    assert subscriber.treatment_date == soon
    steps = list(subscriber.series.steps.order_by("position"))
    before = [s.subject for s in steps if s.before_treatment]
    assert len(before) >= 4
    wanted = 1 + len(before)
    got = wait_for(lambda: (m := messages(outbox, "lia@example.org")[1:]) and len(m) >= wanted and m, timeout=90,
                   message="the welcome and the before-treatment emails")
    assert [m["Subject"] for m in got[:wanted]] == [steps[0].subject, *before]
    for message in got:  # the date is never in what leaves the system
        raw = message.as_string()
        assert soon.isoformat() not in raw and soon.strftime("%d/%m/%Y") not in raw
