"""Sign-up abuse through real processes: a real Celery worker over real Redis and
PostgreSQL decides the sign-ups the form stored. The per-mailbox throttle and the hourly ceiling
count in Redis (the worker's cache and limiter follow its broker), so they hold across processes."""
from __future__ import annotations

import time

import pytest

from nurture.models import SignupRequest, Subscriber
from support.workers import CeleryProcess, subprocess_env, use_broker_in_this_process, wait_for
from tests.e2e.test_loop import outbox_messages

pytestmark = [pytest.mark.e2e, pytest.mark.services]

FORM = {"first_name": "Ana", "stage": "in_treatment", "language": "en", "consent": "on"}


@pytest.fixture
def worker(transactional_db, postgres, redis_url, tmp_path, settings):
    settings.NURTURE_OUTBOX_DIR = tmp_path / "outbox"
    use_broker_in_this_process(redis_url)
    env = subprocess_env(
        broker_url=redis_url, outbox_dir=settings.NURTURE_OUTBOX_DIR, day_seconds=1,
        extra={"NURTURE_SERVICE_EMAILS_PER_HOUR": "3", "NURTURE_RETRY_MAX_SECONDS": "2"},
    )
    process = CeleryProcess("worker", "abuse-worker", env, tmp_path)
    try:
        process.start()
        yield settings.NURTURE_OUTBOX_DIR
    finally:
        process.stop()


def test_variants_get_one_email_and_the_hourly_ceiling_holds_the_rest(worker, client):
    outbox = worker
    variants = ["victim@example.org", "victim+1@example.org", "vic.tim@example.org", "VICTIM+x@example.org"]
    others = ["one@example.org", "two@example.org", "three@example.org"]
    for n, address in enumerate(variants + others):
        assert client.post("/", {**FORM, "email": address}, REMOTE_ADDR=f"198.51.100.{n}").status_code == 302
    # 1 email for the four variants, and the ceiling of 3 an hour lets 2 of the 3 others through.
    wait_for(lambda: len(outbox_messages(outbox)) >= 3, timeout=60, message="three sign-up emails")
    wait_for(
        lambda: not SignupRequest.objects.filter(state="received").exists(), timeout=60, message="every request decided"
    )
    time.sleep(3)  # the held email retries every 2 s: it must still be held
    recipients = sorted(str(m["To"]) for m in outbox_messages(outbox))
    assert len(recipients) == 3
    assert sum(r.replace(".", "").split("+")[0].lower().startswith("victim") for r in recipients) == 1
    held = SignupRequest.objects.get(state="confirm", emailed_at=None)
    assert held.email in others and held.subscriber.status == "pending"
    assert Subscriber.objects.filter(email__istartswith="vic").count() == 1
