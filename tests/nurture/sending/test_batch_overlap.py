"""A messages batch's calls overlap (nurture/sending/batch_calls.py, docs/scheduler.md "Batch
endpoints"): the next call is built in the task's thread while the one before it is at the provider
(a pool thread), each call's answers are written as soon as it is back, and every fault keeps its
meaning: a transient error stops new calls, a partial failure marks only its own messages, an
infrastructure error awaits and records the calls in flight. anymail's real Postmark backend
against the fake provider on 127.0.0.1; the order of events is forced with events, never timed."""
from __future__ import annotations

import threading

import pytest
from django.db import OperationalError

from nurture import providers, sending
from nurture.models import Delivery, Suppression
from nurture.providers import MessagesBatchEndpoint
from nurture.sending import batch_calls, batch_flight
from nurture.sending.calls import provider_health
from nurture.services import planning
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db

PATIENCE = 10.0  # seconds an event may take before the test fails (a bound on failure, not a timing)


@pytest.fixture(autouse=True)
def two_calls_of_two(fast_sending, settings, monkeypatch):
    """Four deliveries go in two calls of two (Postmark's endpoint taking two messages a call, as
    Mailjet's takes 50 and Resend's 100); the client waits long enough for a held call."""
    settings.NURTURE_BATCH_SEND = True
    settings.EMAIL_TIMEOUT = PATIENCE
    monkeypatch.setattr(providers.Postmark, "messages_batch", MessagesBatchEndpoint(path="email/batch", max_messages=2))
    yield
    provider_health.forget()


def planned(n: int) -> list[int]:
    the_series = series("in_treatment", [(0, ["first-article", "second-article"])])
    for i in range(n):
        active_subscriber(f"p{i}@example.org", the_series)
    planning.deliveries_plan_due()
    return list(Delivery.objects.order_by("id").values_list("id", flat=True))


def healthy() -> None:
    """This process heard an acceptance lately: no probe, calls may be in flight together."""
    provider_health.heard([(None, None)])


def calls_made(fake) -> list[list[str]]:
    return [[m["To"] for m in call] for call in fake.state.calls if isinstance(call, list)]


def statuses() -> dict[str, str]:
    return {d.subscriber.email: d.status for d in Delivery.objects.select_related("subscriber")}


def waited(event: threading.Event) -> None:
    assert event.wait(PATIENCE), "the other side never came"


def test_a_batch_goes_in_calls_of_the_endpoints_limit_in_order(postmark):
    healthy()
    ids = planned(5)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 5}
    # Calls in flight together may reach the provider in either order; each holds consecutive deliveries.
    made = sorted(calls_made(postmark))
    assert made == [["p0@example.org", "p1@example.org"], ["p2@example.org", "p3@example.org"], ["p4@example.org"]]


def test_the_second_call_is_built_while_the_first_is_at_the_provider(postmark, monkeypatch):
    """The provider holds the first call until the second call's build has started: made one after
    the other, the second build would never start (and the first call would time out)."""
    ids = planned(4)
    second_build = threading.Event()
    builds = []
    original_build = batch_calls._build_messages_call

    def build(call, **kwargs):
        builds.append([item.pk for item in call])
        if len(builds) == 2:
            second_build.set()
        return original_build(call, **kwargs)

    def hold_first_call(payload):
        if payload["To"] in ("p0@example.org", "p1@example.org"):
            waited(second_build)

    monkeypatch.setattr(batch_calls, "_build_messages_call", build)
    postmark.state.before_accept = hold_first_call
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 4} and not outcome.retry_ids
    assert builds == [ids[:2], ids[2:]]
    assert calls_made(postmark) == [["p0@example.org", "p1@example.org"], ["p2@example.org", "p3@example.org"]]
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_each_calls_answers_are_written_as_soon_as_it_is_back(postmark, monkeypatch):
    """Both calls in flight together (the provider is healthy): the first call's answers are
    written while the provider still holds the second."""
    healthy()
    ids = planned(4)
    first_recorded = threading.Event()
    recorded = []
    original_record = batch_calls._record_messages_answers

    def record(pairs, **kwargs):
        recorded.append(sorted(item.pk for item, _answer in pairs))
        original_record(pairs, **kwargs)
        first_recorded.set()

    def hold_second_call(payload):
        if payload["To"] in ("p2@example.org", "p3@example.org"):
            waited(first_recorded)

    monkeypatch.setattr(batch_calls, "_record_messages_answers", record)
    postmark.state.before_accept = hold_second_call
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 4}
    assert recorded == [ids[:2], ids[2:]]


def test_a_partial_failure_in_the_second_call_marks_only_its_own_messages(postmark):
    healthy()
    ids = planned(4)
    postmark.state.inactive = {"p2@example.org"}  # ErrorCode 406: refused, suppressed
    postmark.state.bad_request_for = {"p3@example.org"}  # ErrorCode 300: this message fails alone
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 2, "failed": 2} and not outcome.retry_ids
    assert len(calls_made(postmark)) == 2
    assert statuses() == {"p0@example.org": "sent", "p1@example.org": "sent", "p2@example.org": "failed",
                          "p3@example.org": "failed"}
    assert list(Suppression.objects.values_list("email", flat=True)) == ["p2@example.org"]
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 4}
    assert len(calls_made(postmark)) == 2


def test_a_transient_error_of_the_first_call_while_the_second_is_built_stops_the_second(postmark, monkeypatch):
    """The first call's HTTP 500 comes back while the second call is being built: the second is
    never sent, never stamped, and backs off with the first, all with one next_attempt_at."""
    healthy()
    ids = planned(4)
    postmark.state.first_faults = ["500"]
    first_back = threading.Event()
    original_post, original_build = batch_flight._post, batch_calls._build_messages_call

    def post(call, connections):
        try:
            return original_post(call, connections)
        finally:
            first_back.set()

    def build(call, **kwargs):
        if call[0].pk == ids[2]:
            waited(first_back)
        return original_build(call, **kwargs)

    monkeypatch.setattr(batch_flight, "_post", post)
    monkeypatch.setattr(batch_calls, "_build_messages_call", build)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"retry": 2} and outcome.retry_ids == ids and outcome.error is None
    assert len(postmark.state.calls) == 1 and postmark.state.accepted == []
    rows = list(Delivery.objects.order_by("id"))
    assert {d.status for d in rows} == {"queued"} and len({d.next_attempt_at for d in rows}) == 1
    assert [d.attempts for d in rows] == [1, 1, 0, 0]  # the second call's rows were never handed over
    assert all(d.provider_call_started_at is None for d in rows)
    # Sent later, each exactly once.
    assert sending.deliveries_send(delivery_ids=outcome.retry_ids).counts == {"sent": 4}
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]


def test_a_transient_error_while_the_second_call_is_in_flight_lets_it_finish(postmark, monkeypatch):
    """Both calls at the provider: the second is held there while the first answers HTTP 500. The
    second is then recorded sent; only the first's rows back off."""
    healthy()
    ids = planned(4)
    second_held, first_back = threading.Event(), threading.Event()
    original_post = batch_flight._post

    def post(call, connections):
        if call.handed[0].pk != ids[0] or first_back.is_set():
            return original_post(call, connections)
        waited(second_held)  # the first call reaches the provider once the second is there
        postmark.state.first_faults = ["500"]
        try:
            return original_post(call, connections)
        finally:
            first_back.set()

    def hold_second_call(payload):
        if payload["To"] == "p2@example.org":
            second_held.set()
            waited(first_back)

    monkeypatch.setattr(batch_flight, "_post", post)
    postmark.state.before_accept = hold_second_call
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 2, "retry": 2} and outcome.retry_ids == ids[:2]
    assert statuses() == {"p0@example.org": "queued", "p1@example.org": "queued", "p2@example.org": "sent",
                          "p3@example.org": "sent"}
    assert sending.deliveries_send(delivery_ids=outcome.retry_ids).counts == {"sent": 2}
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]


def test_a_database_error_stops_the_batch_after_recording_the_call_in_flight(postmark, monkeypatch):
    """The stamp of the second call fails (the database is gone): the first call, at the provider,
    is awaited and recorded sent; the second's rows, never handed over, are released for the task
    to re-enqueue, and the task fails with the error."""
    healthy()
    ids = planned(4)
    original_stamp = batch_calls.stamp_handed

    def stamp(items, **kwargs):
        if items[0].pk == ids[2]:
            raise OperationalError("server closed the connection unexpectedly")
        return original_stamp(items, **kwargs)

    monkeypatch.setattr(batch_calls, "stamp_handed", stamp)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert isinstance(outcome.error, OperationalError)
    assert outcome.counts == {"sent": 2} and outcome.retry_ids == ids[2:]
    assert statuses() == {"p0@example.org": "sent", "p1@example.org": "sent", "p2@example.org": "queued",
                          "p3@example.org": "queued"}
    assert calls_made(postmark) == [["p0@example.org", "p1@example.org"]]


def test_a_provider_just_down_sees_one_call_per_batch(postmark):
    """From a fresh process the first call is a probe: the second, though built, waits for its
    answer, and after its 500 is never sent."""
    ids = planned(4)
    postmark.state.first_faults = ["500"]
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"retry": 2} and outcome.retry_ids == ids
    assert len(postmark.state.calls) == 1


class Killed(BaseException):
    """The worker process dying (not an error the sender could catch)."""


def test_a_worker_killed_between_two_calls_sends_nothing_twice(postmark, monkeypatch):
    """The worker dies as the first call's answers come back, the second call built but not handed
    over: the first call's rows were stamped, so the reconciler makes them unknown (never resent);
    the second's were not, so they go back to queued and are sent, once."""
    from datetime import timedelta

    from django.utils import timezone

    from nurture.services import reconcile

    ids = planned(4)

    def die(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(batch_calls, "_record_messages_answers", die)
    with pytest.raises(Killed):
        sending.deliveries_send(delivery_ids=ids)  # a fresh process: the first call goes alone
    monkeypatch.undo()
    assert calls_made(postmark) == [["p0@example.org", "p1@example.org"]]
    result = reconcile.deliveries_reconcile(now=timezone.now() + timedelta(hours=1))
    assert result.unknown_outcome == 2 and result.requeued == 2
    assert statuses() == {"p0@example.org": "unknown", "p1@example.org": "unknown", "p2@example.org": "queued",
                          "p3@example.org": "queued"}
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 2, "sent": 2}
    assert sorted(postmark.state.acceptances_by_message_id().values()) == [1, 1, 1, 1]
