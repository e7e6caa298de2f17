"""The planner against the database: timing, stage change without repeats, pause/resume, query
cost per batch, concurrent planners, and the due index on PostgreSQL."""
from __future__ import annotations

import threading
import zoneinfo
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from content.models import Article
from nurture.models import Delivery, Subscriber
from nurture.selectors.subscribers import subscribers_due
from nurture.services import planning, subscribers
from tests.helpers.scheduler import active_subscriber, article, series

pytestmark = pytest.mark.django_db
UTC = timezone.utc


@pytest.fixture
def real_days(settings):
    settings.NURTURE_DAY_SECONDS = 86400
    settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS = 2
    settings.NURTURE_SEND_WINDOW_START_HOUR = 9
    settings.NURTURE_SEND_WINDOW_END_HOUR = 17


def sent_now(delivery: Delivery, when: datetime) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENT, sent_at=when)
    Subscriber.objects.filter(pk=delivery.subscriber_id).update(last_sent_at=when)


def plan(now: datetime) -> list[Delivery]:
    before = set(Delivery.objects.values_list("id", flat=True))
    planning.deliveries_plan_due(now=now)
    return list(Delivery.objects.exclude(id__in=before).order_by("id"))


def test_first_step_goes_in_the_local_window_then_the_next_after_its_delay(real_days):
    the_series = series("recently_diagnosed", [(0, ["welcome"]), (3, ["time-to-decide"])])
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    evening = datetime(2026, 6, 1, 20, 0, tzinfo=kolkata)  # confirmed at 20:00 local
    subscriber = active_subscriber("asha@example.org", the_series, time_zone="Asia/Kolkata", now=evening)

    assert plan(evening) == []  # outside 09:00-17:00 local: deferred, not sent at night
    subscriber.refresh_from_db()
    assert subscriber.next_send_at == datetime(2026, 6, 2, 9, 0, tzinfo=kolkata)

    with time_machine.travel(subscriber.next_send_at, tick=False):
        first = plan(subscriber.next_send_at)
    assert [d.step.position for d in first] == [0]
    sent_now(first[0], subscriber.next_send_at)
    subscriber.refresh_from_db()
    assert subscriber.next_step_position == 1
    assert subscriber.next_send_at == datetime(2026, 6, 5, 9, 0, tzinfo=kolkata)  # +3 days, in the window
    assert plan(subscriber.next_send_at - timedelta(minutes=1)) == []  # not due a minute early
    assert [d.step.position for d in plan(subscriber.next_send_at)] == [1]


def test_frequency_cap_defers_a_zero_delay_step(real_days):
    the_series = series("in_treatment", [(0, ["a1"]), (0, ["a2"])])
    now = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    subscriber = active_subscriber("cap@example.org", the_series, now=now)
    sent_now(plan(now)[0], now)
    later = now + timedelta(hours=1)
    Subscriber.objects.filter(pk=subscriber.pk).update(next_send_at=later)  # e.g. a stage change made them due
    assert plan(later) == []
    subscriber.refresh_from_db()
    assert subscriber.next_send_at == now + timedelta(days=2)
    assert len(plan(now + timedelta(days=2))) == 1


def test_weekly_cadence_spaces_emails_a_week_apart(real_days):
    the_series = series("in_treatment", [(0, ["w1"]), (2, ["w2"])])
    now = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    subscriber = active_subscriber("weekly@example.org", the_series, cadence="weekly", now=now)
    sent_now(plan(now)[0], now)
    subscriber.refresh_from_db()
    assert subscriber.next_send_at == now + timedelta(days=7)
    assert plan(now + timedelta(days=6)) == []
    assert len(plan(now + timedelta(days=7))) == 1


def test_stage_change_starts_new_series_keeps_history_and_repeats_no_article(settings):
    settings.NURTURE_DAY_SECONDS = 10  # short days: no window, cap = 20 s
    old = series("recently_diagnosed", [(0, ["welcome", "why"]), (1, ["time-to-decide"])])
    new = series("in_treatment", [(0, ["welcome", "not-too-late"]), (1, ["time-to-decide"]), (1, ["records"])])
    t0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    subscriber = active_subscriber("move@example.org", old, now=t0)
    with time_machine.travel(t0, tick=False):
        sent_now(plan(t0)[0], t0)
        sent_now(plan(t0 + timedelta(seconds=20))[0], t0 + timedelta(seconds=20))

    t1 = t0 + timedelta(seconds=100)
    with time_machine.travel(t1, tick=False):
        subscribers.subscriber_change_stage(subscriber_id=subscriber.pk, stage="in_treatment")
    subscriber.refresh_from_db()
    assert subscriber.series == new and subscriber.next_step_position == 0
    assert Delivery.objects.filter(subscriber=subscriber, step__series=old).count() == 2  # history kept

    first_new = plan(t1)
    assert [d.step.position for d in first_new] == [0]
    # Step 1 of the new series overlaps: only the article they have not had goes.
    assert set(first_new[0].article_versions) == {str(article("not-too-late").pk)}
    sent_now(first_new[0], t1)
    second_new = plan(t1 + timedelta(seconds=30))
    # "time-to-decide" was already received: that step is passed over; "records" comes next.
    assert [d.step.position for d in second_new] == [2]
    received = [a for d in Delivery.objects.filter(subscriber=subscriber) for a in d.article_versions]
    assert len(received) == len(set(received)), "an article was planned twice"


def test_admin_and_preference_centre_use_the_same_move(settings):
    settings.NURTURE_DAY_SECONDS = 10
    series("recently_diagnosed", [(0, ["x1"])])
    target = series("in_remission", [(0, ["x2"])])
    subscriber = active_subscriber("pref@example.org", series("in_treatment", [(0, ["x3"])]))
    subscribers.subscriber_update_preferences(
        subscriber_id=subscriber.pk, first_name="P", stage="in_remission", language="en", cadence="as_planned"
    )
    subscriber.refresh_from_db()
    assert subscriber.series == target and subscriber.next_step_position == 0


def test_pause_keeps_place_and_resume_continues_from_it(settings):
    settings.NURTURE_DAY_SECONDS = 10
    the_series = series("in_remission", [(0, ["p1"]), (1, ["p2"]), (1, ["p3"])])
    t0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    subscriber = active_subscriber("pause@example.org", the_series, now=t0)
    with time_machine.travel(t0, tick=False):
        sent_now(plan(t0)[0], t0)
        subscribers.subscriber_pause(subscriber_id=subscriber.pk)
    assert plan(t0 + timedelta(days=1)) == []  # paused: nothing, however long
    with time_machine.travel(t0 + timedelta(days=1), tick=False):
        subscribers.subscriber_resume(subscriber_id=subscriber.pk)
    resumed = plan(t0 + timedelta(days=1))
    assert [d.step.position for d in resumed] == [1]


def test_draft_articles_are_not_planned_and_a_step_with_none_published_is_passed_over(settings):
    settings.NURTURE_DAY_SECONDS = 10
    article("draft-only", status=Article.Status.DRAFT)
    the_series = series("in_treatment", [(0, ["draft-only"]), (0, ["pub"])])
    active_subscriber("draft@example.org", the_series)
    planned = plan(datetime.now(UTC))
    assert [d.step.position for d in planned] == [1]


def test_a_planning_batch_costs_the_same_statements_for_5_or_50_subscribers(settings):
    """A fixed number of statements per batch, whatever its size; on PostgreSQL each with the same
    number of parameters too: a batch's ids go as one array (dialect.one_of, HISTORY_SQL), never as
    an IN list, which for 500 ids costs the ORM and psycopg more than the query. Someone in each
    batch has a carer, so the carer read and its suppression check run too."""
    from tests.nurture.care.test_carer_copies import handoff_in_force

    settings.NURTURE_DAY_SECONDS = 10
    the_series = series("in_treatment", [(0, ["q1", "q2"]), (1, ["q3"])])
    now = datetime.now(UTC)
    runs = []
    for size in (5, 50):
        Subscriber.objects.all().delete()
        people = [active_subscriber(f"q{size}-{i}@example.org", the_series, now=now) for i in range(size)]
        handoff_in_force(people[0], email=f"carer{size}@example.org")
        statements = []

        def record(execute, sql, params, many, context):
            if "SAVEPOINT" not in sql:  # numbered per transaction
                statements.append((sql, len(params or ())))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            result = planning.deliveries_plan_due(now=now, batch_size=100)
        assert result.planned == size + 1  # everyone's own copy, and the carer's
        runs.append(sorted(statements))
    assert len(runs[0]) == len(runs[1]), runs
    assert any("nurture_carerhandoff" in sql for sql, _ in runs[1])
    if connection.vendor == "postgresql":
        assert runs[0] == runs[1]


def test_idle_subscribers_cost_nothing_to_plan(settings):
    settings.NURTURE_DAY_SECONDS = 10
    the_series = series("in_treatment", [(0, ["i1"])])
    now = datetime.now(UTC)
    for i in range(30):
        active_subscriber(f"idle{i}@example.org", the_series, now=now + timedelta(days=1))
    with CaptureQueriesContext(connection) as queries:
        result = planning.deliveries_plan_due(now=now)
    assert result.subscribers_seen == 0 and len(queries) <= 3, [q["sql"] for q in queries.captured_queries]


def test_due_query_uses_the_partial_index_on_postgres(postgres):
    """EXPLAIN of the planner's own locked due query, with 20k rows of which few are due.
    enable_seqscan stays on: the plan is chosen on real statistics."""
    the_series = series("in_treatment", [(0, ["e1"])])
    now = datetime.now(UTC)
    rows = [
        Subscriber(
            email=f"e{i}@example.org", stage="in_treatment", language="en", series=the_series,
            status=Subscriber.Status.ACTIVE if i % 10 == 0 else Subscriber.Status.UNSUBSCRIBED,
            next_send_at=now - timedelta(minutes=1) if i % 100 == 0 else now + timedelta(days=i % 30 + 1),
        )
        for i in range(20000)
    ]
    Subscriber.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE nurture_subscriber")
    with transaction.atomic():
        qs = subscribers_due(now=now).select_for_update(skip_locked=True, of=("self",))[:500]
        plan_text = qs.explain()
    print(plan_text)
    assert "subscriber_due_idx" in plan_text


@pytest.mark.parametrize("sql", ["history", "old"])
def test_the_history_read_reads_each_delivery_once_when_statistics_are_stale(postgres, sql):
    """The planner's history read (dialect.HISTORY_SQL) joins a batch's ids as a table. Statistics
    taken while the deliveries were empty, 3,000 rows since (a new deployment's first big run, a
    bulk import): the plan reads the table once. Tested with "= ANY(ids)" instead, PostgreSQL
    scans it and tests each row against every id (rows x ids: 12 ms per batch of 500 in a
    planning run of 10k)."""
    from nurture import dialect

    the_series = series("in_treatment", [(0, ["h1"])])
    step = the_series.steps.get()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE nurture_delivery")  # empty: stale from here on
    people = Subscriber.objects.bulk_create(
        [Subscriber(email=f"h{i}@example.org", stage="in_treatment", language="en", series=the_series)
         for i in range(3000)], batch_size=3000)
    Delivery.objects.bulk_create([Delivery(subscriber=person, step=step) for person in people], batch_size=3000)
    ids = [person.pk for person in people[-500:]]
    query = dialect.HISTORY_SQL if sql == "history" else (
        "SELECT subscriber_id FROM nurture_delivery WHERE subscriber_id = ANY(%s::bigint[])")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + query, [ids])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    tests_each_row_against_every_id = "Filter: (subscriber_id = ANY" in plan
    assert tests_each_row_against_every_id == (sql == "old"), plan  # the control shows the trap is there
    assert sorted(row[0] for row in dialect.delivery_history_rows(ids)) == sorted(ids)


@pytest.mark.django_db(transaction=True)
def test_two_planners_at_once_plan_each_subscriber_once(postgres, settings):
    """Two beats by mistake: two planner runs in parallel threads (own connections) on one due set."""
    settings.NURTURE_DAY_SECONDS = 10
    the_series = series("in_treatment", [(0, ["c1"]), (0, ["c2"])])
    now = datetime.now(UTC)
    Subscriber.objects.bulk_create(
        [
            Subscriber(email=f"c{i}@example.org", stage="in_treatment", language="en", series=the_series,
                       status=Subscriber.Status.ACTIVE, next_send_at=now, confirmed_at=now)
            for i in range(400)
        ]
    )
    start = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            start.wait(timeout=10)
            results.append(planning.deliveries_plan_due(now=now, batch_size=20))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sum(r.planned for r in results) == 400
    assert all(r.planned > 0 for r in results), "both planners should have shared the work"
    assert Delivery.objects.count() == 400
    assert Delivery.objects.filter(step__position=0).count() == 400


@pytest.mark.django_db(transaction=True)
def test_a_large_due_set_is_planned_by_several_threads_each_subscriber_once(postgres, settings, monkeypatch):
    """More than a batch due: NURTURE_PLAN_THREADS planners share the rest, each on its own
    connection, and SKIP LOCKED gives each subscriber to one of them."""
    settings.NURTURE_DAY_SECONDS = 10
    settings.NURTURE_PLAN_THREADS = 3
    the_series = series("in_treatment", [(0, ["t1"]), (0, ["t2"])])
    now = datetime.now(UTC)
    Subscriber.objects.bulk_create(
        [
            Subscriber(email=f"t{i}@example.org", stage="in_treatment", language="en", series=the_series,
                       status=Subscriber.Status.ACTIVE, next_send_at=now, confirmed_at=now)
            for i in range(600)
        ]
    )
    threads_seen, real_batch = set(), planning.deliveries_plan_batch

    def batch(**kwargs):
        threads_seen.add(threading.current_thread().name)
        return real_batch(**kwargs)

    monkeypatch.setattr(planning, "deliveries_plan_batch", batch)
    enqueued = []
    result = planning.deliveries_plan_due(now=now, batch_size=20, enqueue=enqueued.extend)
    assert result.planned == 600 == Delivery.objects.count() == len(set(enqueued))
    assert Delivery.objects.filter(step__position=0).values("subscriber_id").distinct().count() == 600
    assert len(threads_seen) == 3, threads_seen
    again = planning.deliveries_plan_due(now=now, batch_size=20)
    assert again.planned == 0  # nothing left due, nothing planned twice


def test_inside_a_transaction_the_planner_stays_on_the_callers_connection(settings):
    """A caller's open transaction (a test, an atomic block) must see every row the planner
    writes: no second connection, whatever NURTURE_PLAN_THREADS says."""
    settings.NURTURE_PLAN_THREADS = 4
    the_series = series("in_treatment", [(0, ["u1"])])
    for i in range(45):
        active_subscriber(f"u{i}@example.org", the_series)
    result = planning.deliveries_plan_due(batch_size=10)
    assert result.planned == 45 == Delivery.objects.count()


def test_without_skip_locked_a_second_planner_waits_its_turn(settings, tmp_path, monkeypatch):
    """SQLite (the local demo) cannot SKIP LOCKED: a file lock lets one planner run at a time."""
    import fcntl

    settings.NURTURE_DAY_SECONDS = 10
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", False)
    active_subscriber("lock@example.org", series("in_treatment", [(0, ["l1"])]))
    with open(tmp_path / "planner.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another planner is running
        assert planning.deliveries_plan_due().planned == 0
        fcntl.flock(held, fcntl.LOCK_UN)
    assert planning.deliveries_plan_due().planned == 1


def test_new_york_spring_forward_weekend_moves_the_instant_not_the_local_hour(real_days):
    the_series = series("in_treatment", [(0, ["ny1"]), (2, ["ny2"])])
    friday = datetime(2026, 3, 6, 16, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"))  # EST
    subscriber = active_subscriber("ny@example.org", the_series, time_zone="America/New_York", now=friday)
    with time_machine.travel(friday, tick=False):
        sent_now(plan(friday)[0], friday)
    subscriber.refresh_from_db()
    # +2 days lands on Sunday 17:30 EDT, past the window: Monday 09:00 EDT (13:00Z, not 14:00Z).
    assert subscriber.next_send_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 3, 9, 12, 59, tzinfo=UTC), tick=False):
        assert plan(datetime(2026, 3, 9, 12, 59, tzinfo=UTC)) == []
    with time_machine.travel(subscriber.next_send_at, tick=False):
        assert [d.step.position for d in plan(subscriber.next_send_at)] == [1]


def test_set_based_writes_match_the_orm_rows_on_postgres(postgres, settings, monkeypatch):
    """The planner's PostgreSQL writes (one INSERT from a JSON document, one UPDATE from another)
    give the rows the ORM path (bulk_create, grouped UPDATEs, used on SQLite) gives."""
    settings.NURTURE_DAY_SECONDS = 10
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def planned_rows(vendor_is_postgres: bool, prefix: str):
        the_series = series("in_treatment", [(0, ["a1", "a2"]), (1, ["a3"])]) if prefix == "pg" else None
        for i in range(4):
            active_subscriber(f"{prefix}{i}@example.org", the_series or Subscriber.objects.first().series, now=now)
        if not vendor_is_postgres:
            monkeypatch.setattr(connection, "vendor", "sqlite")
        try:
            with CaptureQueriesContext(connection) as queries:
                result = planning.deliveries_plan_due(now=now)
        finally:
            monkeypatch.undo()
        assert result.planned == 4
        assert any("jsonb_to_recordset" in q["sql"] for q in queries.captured_queries) == vendor_is_postgres
        deliveries = Delivery.objects.filter(subscriber__email__startswith=prefix).order_by("subscriber__email")
        people = Subscriber.objects.filter(email__startswith=prefix).order_by("email")
        return (
            [(d.step_id, d.status, d.article_versions, d.attempts, d.message_id, d.provider_message_id, d.failure_reason,
              d.sending_started_at, d.provider_call_started_at, d.sent_at) for d in deliveries],
            [(p.next_step_position, p.next_send_at) for p in people],
            [d.queued_at for d in deliveries],
        )

    fast, fast_people, fast_queued = planned_rows(True, "pg")
    orm, orm_people, _ = planned_rows(False, "orm")
    assert fast == orm and fast_people == orm_people
    assert fast[0][1] == "queued" and fast[0][2] and all(isinstance(k, str) for k in fast[0][2])
    assert fast_people[0] == (1, now + timedelta(seconds=10 * 2))  # the next step after the 2-"day" gap
    assert all(q is not None for q in fast_queued)
