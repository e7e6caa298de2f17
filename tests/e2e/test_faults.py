"""Infrastructure faults through real processes: Celery workers (and beat) over real Redis and
PostgreSQL, anymail's real Postmark backend against the fake provider on loopback (30 ms a call).
Each scenario lives in support/fault_scenarios.py, shared with scripts/fault_run.py (which runs
them at 3,000 deliveries and prints the figures in docs/scheduler.md); here they run small and
assert. "Exactly once" is read from the fake provider's record of acceptances."""
from __future__ import annotations

import base64
import json
import re

import pytest

from support.fake_provider import FakeProvider
from support.fault_scenarios import Stack, scenario_db_terminate, scenario_periodic_backlog, scenario_provider_outage, \
    scenario_redis_restart, scenario_withheld_answer
from support.redis_server import RedisServer
from support.workers import use_broker_in_this_process

pytestmark = [pytest.mark.e2e, pytest.mark.services]

LATENCY = 0.03  # a real provider's round trip is 30-200 ms


@pytest.fixture
def fake():
    with FakeProvider() as provider:
        provider.state.latency_seconds = LATENCY
        yield provider


def stack(fake, broker_url, tmp_path, **env):
    use_broker_in_this_process(broker_url)
    return Stack(provider=fake, broker_url=broker_url, log_dir=tmp_path, **env)


def test_database_connections_terminated_mid_send_every_accepted_email_ends_sent(transactional_db, postgres, redis_url, tmp_path, fake):
    s = stack(fake, redis_url, tmp_path, NURTURE_SENDS_PER_SECOND=100, NURTURE_SEND_BATCH_SIZE=50)
    try:
        run = scenario_db_terminate(s, n=400, kills=4, every=1.0, timeout=120)
    finally:
        s.close()
    print("\n" + run.line())
    assert run.notes["sessions_terminated"] >= 4  # the workers really lost their connections
    assert run.settle_seconds is not None, run.line()
    assert run.duplicates == 0 and run.lost == 0 and run.failed == 0 and run.unknown == 0, run.line()
    assert run.sent == run.planned == run.accepted
    logs = "".join(p.log() for p in s.processes)
    assert "database error during" in logs  # the retry path ran


# The sweeper's schedule scaled down from production's (reconcile every 30 s, a queued row overdue
# after 30 s, settled within 2 minutes: scripts/fault_run.py measures that at 3,000 emails), so the
# test waits seconds, not minutes, for the same recovery: beat runs the reconciler, whose sweeper
# re-enqueues what the broker lost.
RECONCILE_EVERY = SWEEP_AFTER = 5
RESTART_EMAILS, RESTART_RATE = 400, 40


def test_redis_restarted_without_persistence_mid_send_every_delivery_settles_within_two_sweeps(
    transactional_db, postgres, tmp_path, fake, settings
):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from nurture.queues import TaskNames
    from nurture.services.schedule import periodic_tasks_ensure

    settings.NURTURE_DAY_SECONDS = 86400  # the production schedule, but for the reconciler's interval
    periodic_tasks_ensure()
    every, _ = IntervalSchedule.objects.get_or_create(every=RECONCILE_EVERY, period=IntervalSchedule.SECONDS)
    assert PeriodicTask.objects.filter(task=TaskNames.RECONCILE_DELIVERIES).update(
        interval=every, expire_seconds=RECONCILE_EVERY, description="") == 1
    with RedisServer(persistence=False) as redis_server:
        s = stack(fake, redis_server.url, tmp_path, NURTURE_SENDS_PER_SECOND=RESTART_RATE, NURTURE_SEND_BATCH_SIZE=50,
                  NURTURE_SWEEP_AFTER_SECONDS=SWEEP_AFTER)
        try:
            run = scenario_redis_restart(s, redis_server, n=RESTART_EMAILS, timeout=90)
        finally:
            s.close()
    print("\n" + run.line())
    assert run.notes["queued_at_kill"] > 0, "the restart should land while sends are queued"
    # Production's 2 minutes are two rounds of (reconciler interval + sweep threshold); here four
    # rounds (slack for a shared CPU: 10-20 s measured), plus the time the emails still to go take
    # at the sending rate (at most 80 % of them were left): 50 s.
    bound = 2 * 2 * (RECONCILE_EVERY + SWEEP_AFTER) + RESTART_EMAILS / RESTART_RATE
    assert run.settle_seconds is not None and run.settle_seconds <= bound, run.line()
    assert run.duplicates == 0 and run.lost == 0 and run.failed == 0, run.line()
    assert run.sent == run.planned
    logs = "".join(p.log() for p in s.processes)
    assert re.search(r"reenqueued=[1-9]", logs), "the sweeper should have re-enqueued what the broker lost"


def test_provider_outage_bounded_probes_then_all_sent_once(transactional_db, postgres, redis_url, tmp_path, fake, settings):
    # Production's backoff (30 s doubling to 30 min) scaled down so the run takes under a minute:
    # 24 s of outage over backoff steps of 1-2, 2-4, then 4-8 s (scripts/fault_run.py runs the same
    # scenario for 60 s at 2.5-5, 5-10, 10-20 s: the same number of steps). The sweeper's threshold
    # is cut to 5 s, and the reconciler runs every 2 s, so it would re-enqueue at once if it ignored
    # the backoff (a row's queued_at is older than that after the first seconds of the outage).
    settings.NURTURE_SWEEP_AFTER_SECONDS = 5
    s = stack(fake, redis_url, tmp_path, NURTURE_SENDS_PER_SECOND=100, NURTURE_SEND_BATCH_SIZE=50, NURTURE_SEND_CONCURRENCY=8,
              NURTURE_RETRY_BASE_SECONDS=2, NURTURE_RETRY_MAX_SECONDS=8, NURTURE_SEND_MAX_ATTEMPTS=12)
    try:
        run = scenario_provider_outage(s, n=200, outage=24, batch=50, timeout=60, reconcile_every=2)
    finally:
        s.close()
    print("\n" + run.line())
    batches = run.notes["batches"]
    # Backoff of 1-2, 2-4, then 4-8 s: at most 8 steps in 24 s (probes at 0, 1, 3, 7, 11, 15, 19, 23 s
    # at the shortest), one probe per batch per step, plus what each worker hands over before its
    # first error (its last answer was an acceptance, so no probe): the calls in flight and the next
    # chunk, 8 threads x 2 workers x 2.
    assert run.notes["calls_during_outage"] <= batches * 8 + 32, run.line()
    assert run.notes["reconciler_reenqueued"] == 0, "the reconciler must respect the batches' backoff"
    assert run.settle_seconds is not None, run.line()
    assert run.duplicates == 0 and run.lost == 0 and run.failed == 0 and run.sent == run.planned, run.line()


def test_periodic_tasks_and_confirmations_run_on_time_during_a_20k_backlog(transactional_db, postgres, redis_url, tmp_path, fake):
    s = stack(fake, redis_url, tmp_path, NURTURE_SENDS_PER_SECOND=200, NURTURE_SEND_BATCH_SIZE=50)
    try:
        run = scenario_periodic_backlog(s, n=20000, rate=200, timeout=60)
    finally:
        s.close()
    print("\n" + run.line())
    # One FIFO queue made them wait for the whole backlog (~100 s here); on their own queues they
    # wait at most for the send batch a worker is in (50 emails at 200/s shared by two workers).
    assert run.notes["backlog_left"] > 10000, "the backlog must still be there when they are measured"
    assert run.notes["plan_waited"] != "never" and float(run.notes["plan_waited"][:-1]) < 15, run.line()
    assert run.notes["confirmation_waited"] != "never" and float(run.notes["confirmation_waited"][:-1]) < 15, run.line()
    assert run.duplicates == 0


SECRET = "postmark-hook:correct-horse-battery"


def test_withheld_answer_is_unknown_never_resent_and_settled_by_the_providers_event(
    transactional_db, postgres, redis_url, tmp_path, fake, client, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # only the configured provider's webhook answers
    fake.state.timeout_seconds = 4.0  # the answer is withheld longer than the worker's EMAIL_TIMEOUT

    def deliver_webhook(delivery, accepted):
        # Postmark's Delivery webhook: its MessageID (which we never heard) and our metadata.
        payload = {
            "RecordType": "Delivery", "MessageStream": "outbound", "ServerID": 23, "MessageID": accepted.provider_message_id,
            "Recipient": delivery.subscriber.email, "Tag": "", "DeliveredAt": "2026-11-27T10:00:00Z",
            "Details": "Test delivery webhook details", "Metadata": {"delivery": str(delivery.pk)},
        }
        response = client.post("/anymail/postmark/tracking/", data=json.dumps(payload), content_type="application/json",
                               HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode())
        assert response.status_code == 200

    s = stack(fake, redis_url, tmp_path, EMAIL_TIMEOUT=2, NURTURE_SENDS_PER_SECOND=50, NURTURE_SEND_BATCH_SIZE=10)
    try:
        run = scenario_withheld_answer(s, n=20, deliver_webhook=deliver_webhook, timeout=60)
    finally:
        s.close()
    print("\n" + run.line())
    assert run.notes["held_status_before_event"] == "unknown"
    assert run.notes["held_requests"] == 1  # not retried: the provider may have had it (it did)
    assert run.notes["held_status_after_event"] == "sent"
    assert run.duplicates == 0 and run.lost == 0 and run.sent == run.planned == 20
