"""The set-based, concurrent sending pipeline in-process, through anymail's real Postmark backend and
the fake provider on 127.0.0.1: a fixed number of queries per batch, calls overlapping in the pool,
the probe, infrastructure errors releasing the batch, a lost database connection while recording,
the journal, read timeouts (unknown) against connect errors (retried), and the reconciler's sweeper."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import redis
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nurture.models import Delivery
from nurture.services import planning, reconcile, throttle
from nurture import sending
from nurture.sending import db_retry, journal as answer_journal, ledger as deliveries
from support.fake_provider import CLIENT_TIMEOUT, FakeProvider
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick(fast_sending, settings, tmp_path):
    # The one-call-per-email pipeline: Postmark's batch endpoint has its own tests (test_batch_postmark.py).
    settings.NURTURE_BATCH_SEND = False
    settings.NURTURE_JOURNAL_DIR = tmp_path / "journal"
    settings.NURTURE_SEND_CONCURRENCY = 8
    settings.NURTURE_RELEASE_BACKOFF_SECONDS = 2.0


@pytest.fixture
def provider(settings):
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url}
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake


def planned(n: int, *, prefix: str = "p") -> list[int]:
    """n new deliveries, planned; returns their ids."""
    from nurture.models import Series

    the_series = Series.objects.filter(stage="in_treatment").first() or series("in_treatment", [(0, ["first-article", "second-article"])])
    before = set(Delivery.objects.values_list("id", flat=True))
    for i in range(n):
        active_subscriber(f"{prefix}{i}@example.org", the_series)
    planning.deliveries_plan_due()
    return sorted(set(Delivery.objects.values_list("id", flat=True)) - before)


def statuses(ids):
    return dict(Delivery.objects.filter(pk__in=ids).values_list("id", "status"))


def test_a_batch_costs_the_same_queries_for_5_or_40_emails(provider):
    small, large = planned(5, prefix="a"), planned(40, prefix="b")
    provider.state.latency_seconds = 0.0
    counts = []
    for ids in (small, large):
        with CaptureQueriesContext(connection) as queries:
            outcome = sending.deliveries_send(delivery_ids=ids)
        assert outcome.counts == {"sent": len(ids)}
        counts.append(len(queries))
    # claim, 4 re-check reads, then per chunk one stamp and per answer group one mark-sent + one
    # subscriber update: chunks are at most NURTURE_SEND_CONCURRENCY emails, so the count grows
    # with calls in flight, never with one query per email per step as before.
    assert counts[1] <= 3 * len(large), counts
    assert counts[0] <= 5 + 3 * len(small), counts


def test_calls_overlap_up_to_the_pool_size(provider, settings):
    ids = planned(24)
    provider.state.latency_seconds = 0.15
    settings.NURTURE_SEND_CONCURRENCY = 6
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 24}
    assert 2 <= provider.state.max_in_flight <= 6
    assert sorted(provider.state.acceptances_by_message_id().values()) == [1] * 24


def test_a_provider_that_is_down_gets_one_probe_per_batch_and_the_batch_backs_off_together(provider):
    ids = planned(10)
    provider.state.fail_until = 10**10  # 500 to everything
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert len(provider.state.requests) == 1
    assert outcome.retry_ids == ids
    rows = Delivery.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", flat=True)) == {"queued"}
    assert len(set(rows.values_list("next_attempt_at", flat=True))) == 1  # one backoff for the batch
    assert rows.filter(attempts=1).count() == 1  # only the probe was tried


def test_no_probe_right_after_an_acceptance_and_a_probe_again_after_a_transient_error(provider, settings):
    settings.NURTURE_SEND_CONCURRENCY = 4
    assert sending.deliveries_send(delivery_ids=planned(1, prefix="ok")).counts == {"sent": 1}
    provider.state.fail_until = 10**10  # then the provider goes down
    first = sending.deliveries_send(delivery_ids=planned(10, prefix="a"))
    # It had just accepted a call from this process: the batch starts with a full pool, not a probe.
    assert len(provider.state.requests) == 1 + 4
    assert len(first.retry_ids) == 10
    second = sending.deliveries_send(delivery_ids=planned(10, prefix="b"))
    # Its last answer was an error: the next batch probes with one call.
    assert len(provider.state.requests) == 1 + 4 + 1
    assert len(second.retry_ids) == 10


def test_answers_are_written_in_groups_not_one_statement_per_call(provider, settings):
    settings.NURTURE_SEND_CONCURRENCY = 8
    ids = planned(33)
    with CaptureQueriesContext(connection) as queries:
        assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 33}
    marks = [q for q in queries.captured_queries if "SET status = 'sent'" in q["sql"]]
    # The probe's answer, then groups of about half a pool: far fewer statements than emails.
    assert 1 < len(marks) <= 33 // 2, len(marks)
    assert sorted(provider.state.acceptances_by_message_id().values()) == [1] * 33


def test_a_chunk_takes_its_send_slots_once_built_and_just_before_its_stamp(provider, monkeypatch):
    """Nothing but the stamp (which must come first) stands between a chunk's send slots and its
    calls: the answers are written and the emails built before the slots are taken, so calls granted
    a window apart do not land in one of the provider's seconds."""
    from nurture.sending import calls

    steps = []
    build_each, stamp_handed, try_send_slots = calls.build_each, calls.stamp_handed, throttle.try_send_slots
    record_answers = calls.record_answers

    def logged(name, function):
        def run(*args, **kwargs):
            steps.append(name)
            return function(*args, **kwargs)
        return run

    monkeypatch.setattr(calls, "build_each", logged("build", build_each))
    monkeypatch.setattr(calls, "stamp_handed", logged("stamp", stamp_handed))
    monkeypatch.setattr(calls, "record_answers", logged("record", record_answers))
    monkeypatch.setattr(throttle, "try_send_slots", logged("slots", try_send_slots))
    ids = planned(20)
    assert sending.deliveries_send(delivery_ids=ids).counts == {"sent": 20}
    assert steps.count("slots") >= 2
    for at, step in enumerate(steps):
        if step == "slots":
            assert steps[at - 1] == "build" and steps[at + 1] == "stamp", steps


def test_a_redis_error_mid_batch_releases_the_rest_and_reports_it(provider, monkeypatch):
    ids = planned(6)
    taken = []

    def slots(n):
        if len(taken) >= 2:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        taken.append(n)
        return 0.0

    monkeypatch.setattr(throttle, "try_send_slots", slots)
    monkeypatch.setattr(throttle, "slots_per_chunk", lambda: 1)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert isinstance(outcome.error, redis.exceptions.ConnectionError)
    assert outcome.counts.get("sent") == 2
    rest = [i for i in ids if statuses([i])[i] != "sent"]
    assert outcome.retry_ids == rest and len(rest) == 4
    rows = Delivery.objects.filter(pk__in=rest)
    assert set(rows.values_list("status", flat=True)) == {"queued"}
    assert len(set(rows.values_list("next_attempt_at", flat=True))) == 1
    assert 0 < outcome.retry_countdown <= 2.0


def test_the_task_reenqueues_then_fails_on_an_infrastructure_error(provider, monkeypatch):
    from nurture import tasks

    ids = planned(3)
    monkeypatch.setattr(throttle, "try_send_slots", lambda n: (_ for _ in ()).throw(redis.exceptions.ConnectionError("down")))
    enqueued = []
    monkeypatch.setattr(tasks, "enqueue_send_batches", lambda ids, countdown=None: enqueued.append((ids, countdown)))
    with pytest.raises(redis.exceptions.ConnectionError):
        tasks.send_deliveries_task.run(ids)
    assert enqueued and enqueued[0][0] == ids and enqueued[0][1] > 0
    assert set(statuses(ids).values()) == {"queued"}


def test_recording_survives_a_terminated_database_connection(transactional_db, provider, postgres, monkeypatch):
    """The worker's session is killed (pg_terminate_backend) between the provider's answer and its
    recording: the write reconnects and the row ends sent with its provider id."""
    import psycopg

    ids = planned(2)
    real = deliveries.deliveries_mark_sent
    killed = []

    def mark_sent(**kwargs):
        if not killed:
            pid = connection.cursor().connection.info.backend_pid
            params = connection.get_connection_params()
            with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
            killed.append(pid)
        return real(**kwargs)

    monkeypatch.setattr(deliveries, "deliveries_mark_sent", mark_sent)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert killed and outcome.counts == {"sent": 2}
    rows = Delivery.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", flat=True)) == {"sent"} and all(rows.values_list("provider_message_id", flat=True))


def test_answers_the_database_would_not_take_are_journalled_then_replayed(provider, monkeypatch):
    ids = planned(3)

    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(deliveries, "deliveries_mark_sent", down)
    monkeypatch.setattr(db_retry.time, "sleep", lambda s: None)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.counts == {"sent": 3}  # the provider accepted all three
    assert set(statuses(ids).values()) == {"sending"}  # not yet written
    assert len(answer_journal.pending_files()) == 1
    monkeypatch.undo()
    # Even if the reconciler judged them first, the journal wins: they were accepted.
    Delivery.objects.filter(pk=ids[0]).update(status="unknown")
    assert sending.answers_journal_replay() == 3
    rows = Delivery.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert sorted(rows.values_list("provider_message_id", flat=True)) == sorted(a.provider_message_id for a in provider.state.accepted)
    assert answer_journal.pending_files() == [] and sending.answers_journal_replay() == 0


def test_a_read_timeout_leaves_the_row_unknown_and_it_is_never_resent(provider, settings):
    ids = planned(2)
    provider.state.withhold_for = {Delivery.objects.get(pk=ids[0]).subscriber.email}
    provider.outwait_the_client(settings)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.retry_ids == []
    delivery = Delivery.objects.get(pk=ids[0])
    assert delivery.status == "unknown" and delivery.failure_reason.startswith("unknown outcome")
    assert sending.deliveries_send(delivery_ids=ids).counts == {"not-claimed": 2}
    assert provider.state.requests_for(delivery.subscriber.email) == 1


def test_a_refused_connection_is_retried_not_unknown(settings):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": f"http://127.0.0.1:{port}/"}
    ids = planned(2)
    outcome = sending.deliveries_send(delivery_ids=ids)
    assert outcome.retry_ids == ids
    assert set(statuses(ids).values()) == {"queued"}


# --- the reconciler -------------------------------------------------------------------------------


def test_unknown_rows_fail_after_the_window_for_staff(settings):
    ids = planned(2)
    settings.NURTURE_UNKNOWN_OUTCOME_SECONDS = 600
    now = timezone.now()
    Delivery.objects.filter(pk=ids[0]).update(status="unknown", provider_call_started_at=now - timedelta(seconds=601))
    Delivery.objects.filter(pk=ids[1]).update(status="unknown", provider_call_started_at=now - timedelta(seconds=60))
    result = reconcile.deliveries_reconcile(enqueue=lambda ids: None, queue_length=lambda: 0)
    assert result.unknown_expired == 1
    assert statuses(ids) == {ids[0]: "failed", ids[1]: "unknown"}
    assert Delivery.objects.get(pk=ids[0]).failure_reason == reconcile.UNKNOWN_EXPIRED_REASON


def test_failed_for_want_of_an_answer_is_its_own_flag_and_a_late_answer_still_settles_it(settings):
    ids = planned(3)
    settings.NURTURE_UNKNOWN_OUTCOME_SECONDS = 600
    long_ago = timezone.now() - timedelta(seconds=601)
    Delivery.objects.filter(pk__in=ids[:2]).update(status="unknown", provider_call_started_at=long_ago)
    # A failure the provider did answer, whatever its words: not awaiting an answer.
    Delivery.objects.filter(pk=ids[2]).update(status="failed", failure_reason="unknown outcome, said the provider")
    assert reconcile.deliveries_reconcile(queue_length=lambda: 0).unknown_expired == 2
    assert dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "unanswered")) == {ids[0]: True, ids[1]: True, ids[2]: False}
    marked = sending.deliveries_mark_sent(provider_message_ids={pk: f"late-{pk}" for pk in ids}, sent_at=timezone.now())
    assert marked == 2
    assert statuses(ids) == {ids[0]: "sent", ids[1]: "sent", ids[2]: "failed"}
    assert not Delivery.objects.filter(pk__in=ids[:2], unanswered=True).exists()  # answered now


def test_the_migration_marks_the_rows_that_failed_for_want_of_an_answer():
    from importlib import import_module

    from django.apps import apps

    ids = planned(3)
    Delivery.objects.filter(pk=ids[0]).update(status="failed", failure_reason="unknown outcome: no word from the provider")
    Delivery.objects.filter(pk=ids[1]).update(status="failed", failure_reason="recipient refused: unknown outcome")
    Delivery.objects.filter(pk=ids[2]).update(status="unknown", failure_reason="unknown outcome: ReadTimeout")
    import_module("nurture.migrations.0002_delivery_unanswered").mark_unanswered(apps, None)
    assert list(Delivery.objects.filter(unanswered=True).values_list("pk", flat=True)) == [ids[0]]


def test_the_sweeper_reenqueues_lost_tasks_only_when_the_send_queue_is_empty_and_respects_backoff(settings):
    ids = planned(3)
    settings.NURTURE_SWEEP_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(seconds=120)
    Delivery.objects.filter(pk__in=ids).update(queued_at=old)
    Delivery.objects.filter(pk=ids[2]).update(next_attempt_at=timezone.now() + timedelta(seconds=30))  # backing off
    enqueued = []
    reconcile.deliveries_reconcile(enqueue=enqueued.extend, queue_length=lambda: 40)
    assert enqueued == []  # a backlog waits in the broker: nobody behind it is late
    reconcile.deliveries_reconcile(enqueue=enqueued.extend, queue_length=lambda: 0)
    assert enqueued == ids[:2]


def test_reconcile_runs_one_at_a_time(redis_url, settings, monkeypatch):
    from nurture import tasks

    settings.CELERY_BROKER_URL = redis_url
    calls = []
    monkeypatch.setattr(reconcile, "deliveries_reconcile", lambda **kw: calls.append(1) or reconcile.ReconcileResult())
    client = redis.Redis.from_url(redis_url)
    with client.lock(tasks.RECONCILE_LOCK, timeout=30):
        assert tasks.reconcile_deliveries_task.run() == {"skipped": "another reconcile is running"}
    assert calls == []
    assert "skipped" not in tasks.reconcile_deliveries_task.run()
    assert calls == [1]


def test_tasks_go_to_their_purpose_queue_and_beat_entries_expire(settings):
    from celery import current_app
    from django_celery_beat.models import PeriodicTask

    from nurture.services.schedule import PERIODIC_TASKS, periodic_tasks_ensure

    router = current_app.amqp.router
    queue = {name: router.route({}, name)["queue"].name for name in (
        "nurture.send_deliveries", "nurture.process_signup", "nurture.send_new_links", "nurture.plan_due_deliveries",
        "nurture.reconcile_deliveries", "nurture.purge_expired_data")}
    assert queue == {
        "nurture.send_deliveries": "sends", "nurture.process_signup": "service", "nurture.send_new_links": "service",
        "nurture.plan_due_deliveries": "periodic", "nurture.reconcile_deliveries": "periodic", "nurture.purge_expired_data": "periodic",
    }
    assert {q.name for q in current_app.amqp.queues.values()} >= {"sends", "service", "periodic"}
    settings.NURTURE_DAY_SECONDS = 86400
    periodic_tasks_ensure()
    for name, task, seconds in PERIODIC_TASKS:
        entry = PeriodicTask.objects.get(name=name)
        assert entry.expire_seconds == entry.interval.every == seconds  # a late run is dropped, never piled up
    assert PeriodicTask.objects.get(task="nurture.reconcile_deliveries").interval.every == 30


def test_an_unknown_delivery_counts_as_had_its_articles_are_not_planned_again(settings):
    from tests.helpers.scheduler import article

    settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS = 0
    the_series = series("in_remission", [(0, ["maybe-had"]), (0, ["maybe-had", "brand-new"])])
    subscriber = active_subscriber("unknown-one@example.org", the_series)
    first = the_series.steps.get(position=0)
    Delivery.objects.create(subscriber=subscriber, step=first, status="unknown", article_versions={str(article("maybe-had").pk): 1})
    subscriber.next_step_position = 1
    subscriber.save()
    planning.deliveries_plan_due()
    planned_row = Delivery.objects.get(subscriber=subscriber, status="queued")
    assert set(planned_row.article_versions) == {str(article("brand-new").pk)}
