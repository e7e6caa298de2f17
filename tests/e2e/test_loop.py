"""The whole subscriber loop through real processes: a Celery worker and beat over real Redis and
PostgreSQL (the shared ones, tests/e2e/conftest.py). Sign up -> confirmation email -> confirm -> first
series email -> the next after its delay."""
from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest

from nurture.models import Delivery, Subscriber
from tests.e2e.conftest import DAY_SECONDS  # the shared stack's series "day"
from support.workers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def outbox_messages(outbox: Path):
    files = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def celery_stack(live_stack):
    """The shared worker and beat (tests/e2e/conftest.py), which also check after the test that
    neither logged a traceback."""
    return {"outbox": live_stack}


def test_sign_up_to_second_series_email(celery_stack, client):
    outbox = celery_stack["outbox"]
    response = client.post(
        "/", {"email": "maria@example.org", "first_name": "María", "stage": "recently_diagnosed", "language": "en", "consent": "on"}
    )
    assert response.status_code == 302

    confirmation = wait_for(lambda: outbox_messages(outbox), timeout=60, message="the confirmation email")[0]
    assert confirmation["To"] == "maria@example.org"
    confirm_url = re.search(r"https://guide\.example\.org(/confirm/[^/\s]+/)", text_of(confirmation)).group(1)

    assert client.get(confirm_url).status_code == 200
    assert Subscriber.objects.get().status == "pending"  # opening the link alone confirms nothing
    assert client.post(confirm_url).status_code == 200
    subscriber = Subscriber.objects.get()
    assert subscriber.status == "active"

    series_steps = list(subscriber.series.steps.order_by("position"))
    assert len(series_steps) >= 2 and series_steps[0].delay_days == 0

    first = wait_for(lambda: outbox_messages(outbox)[1:], timeout=60, message="the first series email")[0]
    assert first["Subject"] == series_steps[0].subject
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    second = wait_for(lambda: outbox_messages(outbox)[2:], timeout=60, message="the second series email")[0]
    assert second["Subject"] == series_steps[1].subject

    sent = list(Delivery.objects.filter(subscriber=subscriber, status="sent").order_by("sent_at"))
    assert [d.step_id for d in sent[:2]] == [series_steps[0].pk, series_steps[1].pk]
    gap = (sent[1].sent_at - sent[0].sent_at).total_seconds()
    assert gap >= series_steps[1].delay_days * DAY_SECONDS * 0.9  # not before its delay
    # Every email went out once: no step delivered twice.
    assert Delivery.objects.filter(subscriber=subscriber).values("step").distinct().count() == Delivery.objects.filter(subscriber=subscriber).count()
