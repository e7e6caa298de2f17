"""Batch sending through real Celery worker processes over real Redis and PostgreSQL, with anymail's
real Mailgun backend talking to FakeMailgun on 127.0.0.1. "Exactly once" is read from the fake
provider's record: one acceptance per delivery's Message-ID, across all batch calls."""
from __future__ import annotations

import contextlib
import json
import time

import pytest

from nurture.models import Delivery
from nurture.tasks import enqueue_send_batches, plan_due_deliveries_task
from support.fake_provider import FakeMailgun
from tests.helpers.scheduler import active_subscriber, series
from support.workers import provider_workers, use_broker_in_this_process, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.services]

DAY_SECONDS = 1
SETTLED = ("sent", "failed", "skipped")
STAGES = ("in_treatment", "recently_diagnosed", "in_remission")


@contextlib.contextmanager
def batch_stack(fake, *, redis_url, tmp_path, settings, batch_size: int):
    """The fake provider, and a way to start workers that send through its batch endpoint."""
    settings.NURTURE_DAY_SECONDS = DAY_SECONDS
    settings.NURTURE_SEND_BATCH_SIZE = batch_size
    use_broker_in_this_process(redis_url)
    with fake as provider, provider_workers(
        provider=provider, broker_url=redis_url, log_dir=tmp_path, day_seconds=DAY_SECONDS,
        NURTURE_BATCH_SEND=1, NURTURE_SEND_BATCH_SIZE=batch_size, NURTURE_SENDS_PER_SECOND=200,
    ) as worker:
        yield provider, worker


@pytest.fixture
def mailgun_stack(transactional_db, postgres, redis_url, tmp_path, settings):
    with batch_stack(FakeMailgun(), redis_url=redis_url, tmp_path=tmp_path, settings=settings, batch_size=25) as stack:
        yield stack


def test_two_workers_send_each_email_exactly_once_in_few_batch_calls(mailgun_stack):
    provider, worker = mailgun_stack
    the_series = series("in_treatment", [(0, ["welcome-batch", "why-batch"]), (3, ["later-batch"])])
    total = 100
    for i in range(total):
        active_subscriber(f"m{i}@example.org", the_series, first_name=f"Name & {i}")
    provider.state.first_faults = ["500", "429"]  # the first two calls fail: their emails retry
    workers = [worker("w1"), worker("w2")]
    started = time.monotonic()
    plan_due_deliveries_task.delay()
    wait_for(lambda: Delivery.objects.count() == total, timeout=30, interval=0.05, message="deliveries planned")
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    enqueue_send_batches(list(reversed(ids)))  # every batch again, as a broker redelivery would: both workers race
    wait_for(lambda: Delivery.objects.filter(status__in=SETTLED).count() == total, timeout=90, interval=0.1,
             message="all deliveries settled")
    seconds = time.monotonic() - started

    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    counts = provider.state.acceptances_by_message_id()
    sent_ids = list(Delivery.objects.values_list("message_id", flat=True))
    assert all(counts[m] == 1 for m in sent_ids), {m: counts[m] for m in sent_ids if counts[m] != 1}
    assert sum(counts.values()) == total, "the provider accepted something we do not count as sent"
    calls = len(provider.state.calls)
    assert Delivery.objects.filter(attempts=2).exists()  # the faulted calls' emails went on the retry
    assert calls <= total // 5, f"{calls} API calls for {total} emails"
    print(f"\nbatch e2e: {total} emails, {calls} Mailgun API calls (2 of them faulted), {seconds:.1f} s, 2 workers")

    # Nothing about the stage in anything the provider received (headers, variables, metadata, body).
    received = json.dumps(provider.state.calls).lower()
    assert not any(stage in received for stage in STAGES)
    assert {key for form in provider.state.calls for key in form if key.startswith("v:")} == {"v:delivery"}
    by_address = {d["to"]: d for d in provider.state.delivered}
    for delivery in Delivery.objects.select_related("subscriber"):
        got = by_address[delivery.subscriber.email]
        assert got["user_variables"] == {"delivery": str(delivery.pk)}
        assert got["headers"]["Message-Id"] == delivery.message_id == delivery.provider_message_id
        assert f"Name &amp; {delivery.subscriber.first_name.split()[-1]}," in got["html"]
    for process in workers:
        assert "Traceback" not in process.log(), process.log()[-3000:]


# --- Postmark's /email/batch ------------------------------------------------------------------------

@pytest.fixture
def postmark_stack(transactional_db, postgres, redis_url, tmp_path, settings):
    from support.fake_provider import FakeProvider

    with batch_stack(FakeProvider(), redis_url=redis_url, tmp_path=tmp_path, settings=settings, batch_size=20) as stack:
        yield stack


def test_postmark_batch_worker_killed_mid_call_sends_nothing_twice(postmark_stack, settings):
    """A worker is killed while Postmark holds its batch call (it has taken some of the call's
    messages): every delivery of that call was stamped as handed over before the call, so the
    reconciler makes them `unknown` (for Postmark's webhooks), never queued; the other batches go
    out in batch calls from the restarted worker; no message is accepted twice."""
    import threading

    from nurture.services import reconcile

    provider, worker = postmark_stack
    settings.NURTURE_SWEEP_AFTER_SECONDS = 0  # the dead worker's unacked tasks: the sweeper re-enqueues their rows
    the_series = series("in_treatment", [(0, ["welcome-pm", "why-pm"]), (3, ["later-pm"])])
    total = 60
    for i in range(total):
        active_subscriber(f"pm{i}@example.org", the_series, first_name=f"Name {i}")
    reached, release = threading.Event(), threading.Event()

    def hold_mid_call(payload):
        if len(provider.state.accepted) == 10:  # half of the first call's 20 messages taken
            reached.set()
            release.wait(timeout=20)

    provider.state.before_accept = hold_mid_call
    doomed = worker("doomed")
    plan_due_deliveries_task.delay()
    assert reached.wait(timeout=60), "the first batch call never reached the provider"
    doomed.kill()
    provider.state.before_accept = None
    release.set()
    held = list(Delivery.objects.filter(status="sending", provider_call_started_at__isnull=False).values_list("pk", flat=True))
    assert len(held) == 20  # the whole call was handed over before it was made

    worker("restarted")
    time.sleep(1.1)
    result = reconcile.deliveries_reconcile(sending_timeout_seconds=1, enqueue=enqueue_send_batches)
    assert result.unknown_outcome == 20 and result.requeued == 0
    wait_for(lambda: Delivery.objects.filter(status__in=(*SETTLED, "unknown")).count() == total, timeout=90,
             interval=0.1, message="all deliveries settled after the restart")
    assert set(Delivery.objects.filter(pk__in=held).values_list("status", flat=True)) == {"unknown"}
    assert Delivery.objects.filter(status="sent").count() == total - 20
    counts = provider.state.acceptances_by_message_id()
    assert all(n == 1 for n in counts.values()), {m: n for m, n in counts.items() if n != 1}
    sent_ids = Delivery.objects.filter(status="sent").values_list("message_id", flat=True)
    assert all(counts[m] == 1 for m in sent_ids)
    batch_calls = [call for call in provider.state.calls if isinstance(call, list)]
    assert len(batch_calls) >= 3 and max(len(call) for call in batch_calls) == 20
