"""Sending in-process: the claim, re-checks, and what each kind of provider error does, through
anymail's real Postmark backend talking to the fake provider on 127.0.0.1. Plus the reconciler and
the shared rate limit."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from nurture.models import Delivery, Subscriber, Suppression
from nurture.services import planning, reconcile, throttle
from nurture import sending
from support.fake_provider import CLIENT_TIMEOUT, FakeProvider
from tests.helpers.scheduler import active_subscriber, article, series, send_one

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick(fast_sending, settings):
    # One call per email: Postmark's batch endpoint has its own tests (test_batch_postmark.py).
    settings.NURTURE_BATCH_SEND = False


@pytest.fixture
def provider(settings):
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url}
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake


def planned(n: int, *, prefix: str = "s") -> list[int]:
    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    for i in range(n):
        active_subscriber(f"{prefix}{i}@example.org", the_series)
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def test_sends_once_records_versions_and_last_sent():
    [delivery_id] = planned(1)
    assert send_one(delivery_id=delivery_id).status == "sent"
    assert send_one(delivery_id=delivery_id).status == "not-claimed"  # a redelivered task
    assert len(mail.outbox) == 1
    delivery = Delivery.objects.select_related("subscriber").get()
    assert delivery.status == "sent" and delivery.sent_at and delivery.attempts == 1
    assert delivery.article_versions == {str(article("first-article").pk): 1, str(article("second-article").pk): 1}
    assert delivery.subscriber.last_sent_at == delivery.sent_at


@pytest.mark.parametrize("change", ["unsubscribe", "suppress"])
def test_rechecked_just_before_sending(change):
    [delivery_id] = planned(1)
    subscriber = Subscriber.objects.get()
    if change == "unsubscribe":
        Subscriber.objects.filter(pk=subscriber.pk).update(status="unsubscribed")
    else:
        Suppression.objects.create(email=subscriber.email.upper(), reason="bounce")
    assert send_one(delivery_id=delivery_id).status == "skipped"
    assert mail.outbox == []


# A read timeout is not among them: the provider may have the message, so it is `unknown`, never
# resent (tests/nurture/sending/test_pipeline.py). A dropped connection is retried, like a refused one.
@pytest.mark.parametrize("fault", ["429", "500", "drop"])
def test_transient_error_requeues_with_backoff_then_sends_once(provider, fault):
    ids = planned(3)
    provider.state.first_faults = [fault]
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.retry_ids == ids  # the failed one and the untried rest back off together
    assert 0.5 <= outcome.retry_countdown <= 1.0  # base 1 s, jitter in its upper half
    first = Delivery.objects.get(pk=ids[0])
    assert first.status == "queued" and first.attempts == 1 and first.next_attempt_at > timezone.now()
    assert "attempt 1" in first.failure_reason

    outcome = sending.deliveries_send(delivery_ids=outcome.retry_ids)
    assert outcome.retry_ids == [] and outcome.counts == {"sent": 3}
    assert sorted(provider.state.acceptances_by_message_id().values()) == [1, 1, 1]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert all(Delivery.objects.values_list("provider_message_id", flat=True))


def test_transient_errors_give_up_after_max_attempts(provider):
    [delivery_id] = planned(1)
    provider.state.first_faults = ["500", "500", "500"]
    for _ in range(3):
        sending.deliveries_send(delivery_ids=[delivery_id])
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "gave up after 3 attempts" in delivery.failure_reason
    assert provider.state.accepted == []


def test_permanent_error_fails_with_reason_and_is_not_retried(provider):
    ids = planned(2)
    bad = Delivery.objects.get(pk=ids[0]).subscriber.email
    provider.state.bad_request_for = {bad}
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.retry_ids == [] and outcome.counts == {"failed": 1, "sent": 1}
    failed = Delivery.objects.get(pk=ids[0])
    assert failed.status == "failed" and "HTTP 400" in failed.failure_reason and failed.failed_at
    assert provider.state.requests_for(bad) == 1
    assert Subscriber.objects.get(email=bad).status == "active"  # a bad message, not a bad address


def test_refused_recipient_is_suppressed(provider):
    ids = planned(2)
    refused = Delivery.objects.get(pk=ids[1]).subscriber.email
    provider.state.inactive = {refused}
    sending.deliveries_send(delivery_ids=ids)
    delivery = Delivery.objects.get(pk=ids[1])
    assert delivery.status == "failed" and delivery.failure_reason.startswith("recipient refused")
    assert Suppression.objects.filter(email__iexact=refused).exists()
    subscriber = Subscriber.objects.get(email=refused)
    assert subscriber.status == "suppressed" and subscriber.next_send_at is None


def test_message_id_is_kept_for_staff_and_provider_id_recorded(provider):
    [delivery_id] = planned(1)
    sending.deliveries_send(delivery_ids=[delivery_id])
    delivery = Delivery.objects.get()
    [accepted] = provider.state.accepted
    assert delivery.message_id == accepted.message_id_header
    assert delivery.provider_message_id == accepted.provider_message_id


def test_reconciler_settles_each_kind_of_stuck_delivery():
    ids = planned(4)
    long_ago = timezone.now() - timedelta(hours=1)
    # 0: provider accepted (id recorded); 1: never handed to the provider; 2: handed, answer lost;
    # 3: sending but recent (a live worker): left alone.
    Delivery.objects.filter(pk=ids[0]).update(status="sending", sending_started_at=long_ago, provider_call_started_at=long_ago, provider_message_id="pm-1")
    Delivery.objects.filter(pk=ids[1]).update(status="sending", sending_started_at=long_ago)
    Delivery.objects.filter(pk=ids[2]).update(status="sending", sending_started_at=long_ago, provider_call_started_at=long_ago)
    Delivery.objects.filter(pk=ids[3]).update(status="sending", sending_started_at=timezone.now())
    enqueued = []
    result = reconcile.deliveries_reconcile(sending_timeout_seconds=900, enqueue=enqueued.extend)
    statuses = dict(Delivery.objects.values_list("id", "status"))
    assert [statuses[i] for i in ids] == ["sent", "queued", "unknown", "sending"]  # unknown: for the provider's word
    assert Delivery.objects.get(pk=ids[2]).failure_reason == reconcile.UNKNOWN_OUTCOME_REASON
    assert enqueued == [ids[1]]
    assert (result.marked_sent, result.requeued, result.unknown_outcome) == (1, 1, 1)
    assert Delivery.objects.get(pk=ids[0]).subscriber.last_sent_at == long_ago


def test_reconciler_reenqueues_queued_deliveries_whose_task_was_lost():
    ids = planned(2)
    Delivery.objects.filter(pk=ids[0]).update(queued_at=timezone.now() - timedelta(hours=2))
    enqueued = []
    reconcile.deliveries_reconcile(sending_timeout_seconds=900, enqueue=enqueued.extend)
    assert enqueued == [ids[0]]


def test_a_worker_whose_claim_was_reconciled_does_not_send(monkeypatch):
    """A worker stalled past the timeout: the reconciler requeued its row; when it wakes up its
    claim no longer holds and it sends nothing (the new claimant sends it once)."""
    [delivery_id] = planned(1)

    def stall():
        Delivery.objects.filter(pk=delivery_id).update(status="queued")  # as the reconciler would
        return 0.0

    assert send_one(delivery_id=delivery_id, wait_for_slot=stall).status == "not-claimed"
    assert mail.outbox == []
    assert send_one(delivery_id=delivery_id).status == "sent"
    assert len(mail.outbox) == 1


def sends_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps if start <= t < start + window) for start in stamps)


@pytest.mark.services
def test_send_rate_limit_is_shared_between_senders(redis_url):
    rate, per_sender = 20.0, 15
    limits_ = [throttle.SendRateLimit(redis_url, rate, key="test-shared") for _ in range(2)]
    stamps: list[float] = []
    lock = threading.Lock()

    def send_all(limit):
        for _ in range(per_sender):
            limit.acquire(max_wait=30)
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=send_all, args=(limit,)) for limit in limits_]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(stamps) == 2 * per_sender
    # A little under 1 s: a stamp is read after its hit, and a busy machine can delay that read by tens of
    # milliseconds, moving it into the next window. A limiter that let 2 senders each take the full rate
    # would still show ~40 here.
    busiest = sends_in_any_window(stamps, 0.9)
    print(f"{len(stamps)} sends by 2 senders sharing {rate:.0f}/s: busiest second had {busiest}, "
          f"all took {max(stamps) - min(stamps):.2f}s")
    assert busiest <= rate


def test_a_freed_slot_is_reused_late_enough_that_a_late_send_stays_in_its_own_second():
    """A send reaches the provider some milliseconds after its slot (the stamp, the call): here
    each one is late by a random 0-40 ms. The moving window would grant the next send exactly one
    window after the one it replaces, so a later send that happened to be quicker would share the
    provider's second with it; a freed slot is reused REUSE_MARGIN_SECONDS late, so every full
    second at the provider holds at most the rate."""
    import random

    assert throttle.REUSE_MARGIN_SECONDS > 0.04
    lateness = random.Random(7)
    limit = throttle.SendRateLimit("memory://", 10.0, key="test-late")
    arrivals = []
    for _ in range(40):
        limit.acquire(max_wait=30)
        arrivals.append(time.time() + lateness.uniform(0, 0.04))
    assert sends_in_any_window(arrivals, 1.0) <= 10
    assert max(arrivals) - min(arrivals) >= 3 * (1 + throttle.REUSE_MARGIN_SECONDS) - 0.05


def test_local_rate_limit_holds_in_one_process():
    limit = throttle.SendRateLimit("memory://", 25.0, key="test-local")
    stamps = []
    for _ in range(60):
        limit.acquire(max_wait=30)
        stamps.append(time.time())
    assert sends_in_any_window(stamps, 0.98) <= 25
    assert max(stamps) - min(stamps) >= 2 * 0.95  # 60 sends at 25 per second need over two seconds


@pytest.mark.parametrize("rate, amount, seconds", [(14, 14, 1), (14.7, 14, 1), (0.5, 1, 2), (0.3, 1, 4)])
def test_rate_setting_maps_to_whole_sends_per_window(rate, amount, seconds):
    item = throttle.rate_limit_item(rate)
    assert (item.amount, item.get_expiry()) == (amount, seconds)


@pytest.mark.parametrize("ceiling, granted", [(14, 13), (14.7, 13), (500, 450), (2, 1), (1.5, 1.5), (0.5, 0.5)])
def test_the_limiter_grants_a_little_under_the_providers_ceiling(settings, ceiling, granted):
    settings.NURTURE_SENDS_PER_SECOND = ceiling
    assert throttle.granted_rate(ceiling) == granted
    throttle.forget_in_process_limiters()
    assert throttle.provider_rate_limit().item.amount == throttle.rate_limit_item(granted).amount


def test_one_call_per_email_takes_a_tenth_of_a_window_at_once(settings):
    throttle.forget_in_process_limiters()
    settings.NURTURE_SENDS_PER_SECOND = 14
    assert throttle.slots_per_chunk() == 1
    settings.NURTURE_SENDS_PER_SECOND = 500
    assert throttle.slots_per_chunk() == 45  # a tenth of the 450 granted per second


def test_staff_requeue_moves_only_failed_deliveries_and_enqueues_on_commit(django_capture_on_commit_callbacks):
    ids = planned(3)
    Delivery.objects.filter(pk=ids[0]).update(status="failed", failure_reason=reconcile.UNKNOWN_OUTCOME_REASON)
    Delivery.objects.filter(pk=ids[1]).update(status="sent")
    enqueued = []
    with django_capture_on_commit_callbacks(execute=True):
        moved = sending.deliveries_requeue(delivery_ids=ids, enqueue=enqueued.extend)
    assert moved == 1 and enqueued == [ids[0]]
    assert dict(Delivery.objects.values_list("id", "status")) == {ids[0]: "queued", ids[1]: "sent", ids[2]: "queued"}
    assert send_one(delivery_id=ids[0]).status == "sent"


def test_a_partly_new_step_sends_only_the_articles_not_had_before():
    the_series = series("in_treatment", [(0, ["seen-before", "brand-new"])])
    subscriber = active_subscriber("partial@example.org", the_series)
    other = series("in_remission", [(0, ["seen-before"])])
    earlier = Delivery.objects.create(subscriber=subscriber, step=other.steps.get(), status="sent", article_versions={str(article("seen-before").pk): 1},
                                      sent_at=timezone.now() - timedelta(hours=1))
    planning.deliveries_plan_due()
    delivery = Delivery.objects.exclude(pk=earlier.pk).get()
    assert send_one(delivery_id=delivery.pk).status == "sent"
    [message] = mail.outbox
    assert "Brand New" in message.body and "Seen Before" not in message.body
    delivery.refresh_from_db()
    assert delivery.article_versions == {str(article("brand-new").pk): 1}


def test_retry_ceiling_above_the_broker_visibility_timeout_is_a_check_error(settings):
    from config.checks import environment_values

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    settings.NURTURE_RETRY_MAX_SECONDS = 1800.0
    assert "nurture.E010" not in [e.id for e in environment_values()]
    settings.NURTURE_RETRY_MAX_SECONDS = 4000.0
    assert "nurture.E010" in [e.id for e in environment_values()]


@pytest.mark.parametrize(
    "attempts, low, high", [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (6, 2.0, 4.0)]
)
def test_backoff_doubles_with_jitter_up_to_the_cap(attempts, low, high):
    values = [sending.retry_countdown(attempts) for _ in range(50)]
    assert all(low <= v <= high for v in values)
    assert len(set(values)) > 1  # jittered, not one fixed delay


def test_a_sign_up_email_retries_a_transient_provider_error(settings, monkeypatch, mailoutbox):
    """The sign-up task (nurture.process_signup) retries a transient provider error itself; the
    decision is made once (the request row records it), and the email goes once."""
    from anymail.exceptions import AnymailRequestsAPIError
    from nurture import tasks
    from nurture.models import SignupRequest
    from nurture.services import signup

    request = SignupRequest.objects.create(
        email="conf@example.org", stage="in_remission", language="en", consent_text="I agree."
    )
    calls = []
    real_send = signup.signup_request_email

    class Flaky:
        status_code = 503

    def flaky_send(*, request_id):
        calls.append(request_id)
        if len(calls) == 1:
            raise AnymailRequestsAPIError("provider busy", response=Flaky())
        return real_send(request_id=request_id)

    monkeypatch.setattr(signup, "signup_request_email", flaky_send)
    monkeypatch.setattr(sending, "retry_countdown", lambda attempts: 0)
    assert tasks.process_signup.apply(args=[request.pk]).get() is True
    assert calls == [request.pk, request.pk] and len(mailoutbox) == 1
    assert Subscriber.objects.get().status == "pending"
