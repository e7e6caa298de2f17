"""Sending through real Celery worker processes over real Redis and PostgreSQL, with anymail's real
Postmark backend talking to the fake provider on 127.0.0.1. "Exactly once" is read from the fake
provider's record: one acceptance per delivery's Message-ID."""
from __future__ import annotations

import threading
import time
from collections import Counter
import pytest

from nurture.models import Delivery, Subscriber, Suppression
from nurture.services import reconcile
from nurture.tasks import enqueue_send_batches, plan_due_deliveries_task
from support.fake_provider import FakeProvider
from tests.helpers.scheduler import active_subscriber, series
from support.workers import provider_workers, use_broker_in_this_process, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.services]

DAY_SECONDS = 1
SETTLED = ("sent", "failed", "skipped")


@pytest.fixture
def stack(transactional_db, postgres, redis_url, tmp_path, settings):
    """A fake provider, and a way to start workers wired to it. Stops every worker at the end."""
    settings.NURTURE_DAY_SECONDS = DAY_SECONDS
    settings.NURTURE_SEND_BATCH_SIZE = 5
    use_broker_in_this_process(redis_url)
    with FakeProvider() as provider, provider_workers(
        provider=provider, broker_url=redis_url, log_dir=tmp_path, day_seconds=DAY_SECONDS, NURTURE_SEND_BATCH_SIZE=5,
        NURTURE_BATCH_SEND=0,  # one call per email; Postmark's batch endpoint: tests/e2e/test_batch.py
    ) as worker:
        yield provider, worker


def subscribers_due(n: int, *, prefix: str = "r") -> list[Subscriber]:
    the_series = series("in_treatment", [(0, ["welcome-e2e", "why-e2e"]), (3, ["later-e2e"])])
    return [active_subscriber(f"{prefix}{i}@example.org", the_series) for i in range(n)]


def settled(expected: int):
    def check():
        return Delivery.objects.filter(status__in=SETTLED).count() == expected and Delivery.objects.count() == expected
    return check


def assert_sent_exactly_once(provider: FakeProvider, expected_sent: int) -> None:
    sent = list(Delivery.objects.filter(status="sent").values_list("message_id", flat=True))
    counts = provider.state.acceptances_by_message_id()
    assert len(sent) == expected_sent
    assert all(counts[m] == 1 for m in sent), {m: counts[m] for m in sent if counts[m] != 1}
    assert sum(counts.values()) == expected_sent, "the provider accepted something we do not count as sent"


def test_two_workers_and_two_planners_send_each_email_exactly_once(stack):
    provider, worker = stack
    subscribers_due(40)
    workers = [worker("w1"), worker("w2")]
    # Two beats by mistake: the plan task twice at once, one on each worker.
    plan_due_deliveries_task.delay()
    plan_due_deliveries_task.delay()
    wait_for(lambda: Delivery.objects.count() == 40, timeout=30, interval=0.05, message="40 deliveries planned")
    # And every send batch delivered twice more, as a broker redelivery would: both workers race.
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    enqueue_send_batches(ids)
    enqueue_send_batches(list(reversed(ids)))
    wait_for(settled(40), timeout=60, interval=0.1, message="all deliveries settled")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert_sent_exactly_once(provider, 40)
    assert Delivery.objects.values("subscriber").distinct().count() == 40  # nobody planned twice
    for process in workers:
        assert "Traceback" not in process.log(), process.log()[-3000:]
        assert "send batch" in process.log()  # both workers took part


def test_worker_killed_mid_batch_then_restarted_sends_each_email_exactly_once(stack):
    provider, worker = stack
    subscribers_due(10)  # one send task: at 0.5/s a task takes 10 (throttle.send_batch_size)
    # One send per two-second window (a ceiling of 0.5/s: throttle.granted_rate keeps a ceiling
    # under 2/s as it is), shared by the worker's processes through Redis. Just after the 2nd is
    # sent every sender waits almost two seconds for the next slot, so the kill lands between
    # provider calls, not inside one, even on a loaded machine (at 3 per one-second window the gap
    # was under a second, and a slow poll could see the kill land inside the next call).
    # One call at a time (NURTURE_SEND_CONCURRENCY=1): with a pool, several calls would be in
    # flight at the kill, which is the held-call case below, not this one.
    first = worker("doomed", NURTURE_SENDS_PER_SECOND=0.5, NURTURE_SEND_BATCH_SIZE=10, NURTURE_SEND_CONCURRENCY=1)
    plan_due_deliveries_task.delay()
    wait_for(lambda: Delivery.objects.filter(status="sent").count() >= 2, timeout=30, interval=0.005, message="2 sent")
    first.kill()  # SIGKILL, mid-batch: no clean-up, the batch's message stays unacked in Redis
    left = Counter(Delivery.objects.values_list("status", flat=True))
    # The whole batch was claimed in one statement: what was not sent waits in `sending`, never handed over.
    assert Delivery.objects.exclude(status="sent").exists(), "the kill should leave part of the batch unsent"
    stuck = list(Delivery.objects.filter(status="sending").values_list("provider_call_started_at", flat=True))
    assert all(called is None for called in stuck), "killed inside a provider call: see the at-most-once test"

    worker("restarted", NURTURE_SENDS_PER_SECOND=50)
    # The periodic reconciler, run once the sending timeout has passed (1 s here): it requeues the
    # row the dead worker held (never handed to the provider) and re-enqueues the rest.
    time.sleep(1.1)
    result = reconcile.deliveries_reconcile(sending_timeout_seconds=1, enqueue=enqueue_send_batches)
    assert result.requeued == len(stuck) and result.unknown_outcome == 0, (result, left)
    wait_for(settled(10), timeout=60, interval=0.1, message="all deliveries settled after restart")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert_sent_exactly_once(provider, 10)


def test_worker_killed_while_the_provider_holds_its_call_is_not_resent(stack):
    """The one ambiguous moment: the provider accepted, the worker died before hearing so. We choose
    at most once: the reconciler marks it `unknown` (for the provider's webhook, then failed
    "unknown outcome" for staff after NURTURE_UNKNOWN_OUTCOME_SECONDS), and it is not resent.
    One call in flight here, so exactly one is held (tests/e2e/test_faults.py covers the pool)."""
    provider, worker = stack
    subscribers_due(6)
    reached, release = threading.Event(), threading.Event()

    def hold_third(payload):
        if len(provider.state.accepted) == 3:
            reached.set()
            release.wait(timeout=15)

    provider.state.after_accept = hold_third
    first = worker("doomed", NURTURE_SEND_BATCH_SIZE=6, NURTURE_SEND_CONCURRENCY=1)
    plan_due_deliveries_task.delay()
    assert reached.wait(timeout=30), "the third message never reached the provider"
    first.kill()
    provider.state.after_accept = None
    release.set()
    # Calls overlap: the held one is the row handed to the provider whose answer never came back
    # (others of the batch may still be claimed but not handed: the reconciler requeues those).
    [held] = Delivery.objects.filter(status="sending", provider_call_started_at__isnull=False)
    assert held.provider_message_id == ""

    worker("restarted")
    time.sleep(1.1)
    result = reconcile.deliveries_reconcile(sending_timeout_seconds=1, enqueue=enqueue_send_batches)
    assert result.unknown_outcome == 1
    wait_for(lambda: Delivery.objects.filter(status__in=(*SETTLED, "unknown")).count() == 6, timeout=60, interval=0.1,
             message="all deliveries settled after restart")
    held.refresh_from_db()
    assert held.status == "unknown" and held.failure_reason == reconcile.UNKNOWN_OUTCOME_REASON
    counts = provider.state.acceptances_by_message_id()
    assert counts[held.message_id] == 1  # the provider has it once; we never sent it again
    assert Delivery.objects.filter(status="sent").count() == 5
    assert all(counts[m] == 1 for m in Delivery.objects.filter(status="sent").values_list("message_id", flat=True))


def test_provider_faults_end_sent_once_failed_or_suppressed(stack):
    provider, worker = stack
    people = subscribers_due(12)
    bad, refused = people[3].email, people[7].email
    provider.state.first_faults = ["429", "500", "timeout", "drop"]
    provider.state.timeout_seconds = 4.0  # the worker gives up after EMAIL_TIMEOUT=2
    provider.state.bad_request_for = {bad}
    provider.state.inactive = {refused}
    worker("w1")
    worker("w2")
    plan_due_deliveries_task.delay()
    wait_for(lambda: Delivery.objects.filter(status__in=(*SETTLED, "unknown")).count() == 12, timeout=90, interval=0.1,
             message="all deliveries settled")

    statuses = dict(Delivery.objects.values_list("subscriber__email", "status"))
    assert statuses.pop(bad) == "failed" and statuses.pop(refused) == "failed"
    # The read timeout: the provider may have had it, so it is unknown (for its webhook), never resent.
    [timed_out] = [email for email, status in statuses.items() if status == "unknown"]
    assert provider.state.requests_for(timed_out) == 1
    statuses.pop(timed_out)
    assert set(statuses.values()) == {"sent"}
    assert_sent_exactly_once(provider, 9)
    assert provider.state.requests_for(bad) == 1  # permanent: not retried
    assert "HTTP 400" in Delivery.objects.get(subscriber__email=bad).failure_reason
    assert Suppression.objects.filter(email__iexact=refused).exists()
    assert Subscriber.objects.get(email=refused).status == "suppressed"
    retried = Delivery.objects.filter(attempts__gt=1).count()
    assert retried >= 1  # the transient faults were retried, not failed
