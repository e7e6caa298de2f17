"""Infrastructure-fault scenarios through real parts: Celery workers (and beat) as subprocesses over
real Redis and PostgreSQL, anymail's real Postmark backend against the fake provider on loopback.

Used by the fault tests (tests/e2e/test_faults.py: small runs, assertions) and by
scripts/fault_run.py (3,000 deliveries a scenario, figures printed for docs/scheduler.md). Each
scenario returns a FaultRun: planned, accepted (distinct messages the provider accepted),
duplicates (messages it accepted more than once), lost (accepted but not recorded sent, or never
settled), and the settle time after the fault.

The database is whatever Django is connected to (the test database, or the script's scratch one).
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection
from django.utils import timezone

SETTLED = ("sent", "failed", "skipped")


@dataclass
class FaultRun:
    scenario: str
    planned: int = 0
    accepted: int = 0
    duplicates: int = 0
    lost: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    settle_seconds: float | None = None
    provider_calls: int = 0
    notes: dict = field(default_factory=dict)

    def line(self) -> str:
        settle = "n/a" if self.settle_seconds is None else f"{self.settle_seconds:.1f}s"
        extra = " ".join(f"{k}={v}" for k, v in self.notes.items())
        return (
            f"{self.scenario:<18} planned={self.planned:<6} accepted={self.accepted:<6} "
            f"duplicates={self.duplicates:<3} "
            f"lost={self.lost:<3} sent={self.sent:<6} failed={self.failed:<3} unknown={self.unknown:<3} "
            f"settle={settle:<7} provider_calls={self.provider_calls} {extra}"
        ).rstrip()


# --- the stack -------------------------------------------------------------------------------------


class Stack:
    """Workers (and beat) wired to one fake provider and one broker; all stopped by close()."""

    def __init__(self, *, provider, broker_url: str, log_dir: Path, day_seconds: int = 60, **env):
        self.provider, self.broker_url = provider, broker_url
        self.log_dir, self.day_seconds = Path(log_dir), day_seconds
        self.env = {k: str(v) for k, v in env.items()}
        self.processes = []

    def _env(self, extra: dict):
        from support.workers import subprocess_env

        return subprocess_env(
            broker_url=self.broker_url, outbox_dir=self.log_dir / "outbox", day_seconds=self.day_seconds,
            # The scenarios are of the one-call-per-email pipeline (its probe, pool and per-call
            # answers); Postmark's batch endpoint has its own tests (tests/e2e/test_batch.py).
            extra={**self.provider.anymail_env(), "NURTURE_BATCH_SEND": "0", **self.env,
                   **{k: str(v) for k, v in extra.items()}},
        )

    def worker(self, name: str, **extra):
        from support.workers import CeleryProcess

        process = CeleryProcess("worker", name, self._env(extra), self.log_dir)
        self.processes.append(process)
        return process.start()

    def beat(self, **extra):
        from support.workers import CeleryProcess

        process = CeleryProcess("beat", "beat", self._env(extra), self.log_dir)
        self.processes.append(process)
        return process.start()

    def close(self):
        from support.workers import stop_all

        stop_all(self.processes)


# --- data ------------------------------------------------------------------------------------------


def due_deliveries(n: int, *, prefix: str = "f") -> list[int]:
    """n active subscribers with one queued delivery each (bulk inserts: 20k in a few seconds)."""
    from content.models import Article
    from nurture.models import Delivery, Series, Step, StepArticle, Subscriber

    article = Article.objects.create(
        slug=f"fault-{prefix}", language="en", title="What a second opinion is", stages=["in_treatment"],
        source_section="test", body_markdown="A short body.", body_html="<p>A short body.</p>",
        status=Article.Status.PUBLISHED,
    )
    # With DEBUG off only approved text is sent: a clinical reviewer approves it, as in production.
    from content.services import article_approve
    from support.library import sample_reviewer

    article_approve(article_id=article.pk, user=sample_reviewer())
    series = Series.objects.filter(stage="in_treatment", language="en").first() or Series.objects.create(
        stage="in_treatment", language="en", name="Fault series")
    position = series.steps.count()
    step = Step.objects.create(series=series, position=position, delay_days=0, subject=f"A step {prefix}")
    StepArticle.objects.create(step=step, article=article, order=0)
    now = timezone.now()
    subscribers = Subscriber.objects.bulk_create(
        [Subscriber(email=f"{prefix}{i}@example.org", stage="in_treatment", language="en", status="active",
                    series=series, next_send_at=None, confirmed_at=now) for i in range(n)],
        batch_size=2000,
    )
    deliveries = Delivery.objects.bulk_create(
        [Delivery(subscriber_id=s.pk, step_id=step.pk, article_versions={str(article.pk): article.version})
         for s in subscribers],
        batch_size=2000,
    )
    return [d.pk for d in deliveries]


def counts(ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from nurture.models import Delivery

    return dict(Delivery.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id")).order_by())


def settled(ids: list[int], *, also=()) -> bool:
    c = counts(ids)
    return sum(c.get(s, 0) for s in (*SETTLED, *also)) == len(ids)


def wait_until(predicate, *, timeout: float, interval: float = 0.25) -> float | None:
    """Seconds until predicate() held, or None if it did not within timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    return None


def summarise(name: str, ids: list[int], provider, *, settle_seconds) -> FaultRun:
    from nurture.models import Delivery

    by_id = provider.state.acceptances_by_message_id()
    rows = list(Delivery.objects.filter(pk__in=ids).values_list("status", "message_id"))
    sent_ids = {m for status, m in rows if status == "sent"}
    c = counts(ids)
    lost_accepted = sum(1 for m in by_id if m not in sent_ids)  # the provider has it, we do not say sent
    unsettled = sum(1 for status, _ in rows if status in ("queued", "sending"))
    return FaultRun(
        scenario=name, planned=len(ids), accepted=len(by_id), duplicates=sum(1 for v in by_id.values() if v > 1),
        lost=lost_accepted + unsettled, sent=c.get("sent", 0), failed=c.get("failed", 0), unknown=c.get("unknown", 0),
        settle_seconds=settle_seconds, provider_calls=len(provider.state.requests),
    )


def enqueue(ids: list[int]) -> None:
    from nurture.tasks import enqueue_send_batches

    enqueue_send_batches(ids)


# --- scenarios -------------------------------------------------------------------------------------


def terminate_worker_connections() -> int:
    """pg_terminate_backend on every other session of this database (the workers'), as an operator
    or a failover would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def scenario_db_terminate(stack: Stack, *, n: int, kills: int = 4, every: float = 1.0,
                          timeout: float = 150) -> FaultRun:
    ids = due_deliveries(n, prefix="db")
    stack.worker("db1")
    stack.worker("db2")
    enqueue(ids)
    wait_until(lambda: counts(ids).get("sent", 0) >= max(1, n // 10), timeout=60, interval=0.05)
    terminated = 0
    started = time.monotonic()
    for _ in range(kills):
        terminated += terminate_worker_connections()
        time.sleep(every)
    took = wait_until(lambda: settled(ids), timeout=timeout)
    run = summarise("db-terminate", ids, stack.provider,
                    settle_seconds=None if took is None else time.monotonic() - started)
    run.notes = {"kills": kills, "sessions_terminated": terminated}
    return run


def scenario_redis_restart(stack: Stack, redis_server, *, n: int, down_seconds: float = 1.0,
                           timeout: float = 170) -> FaultRun:
    """kill -9 the broker (no persistence: every queued message is lost) and start it again; beat
    runs the reconciler (sweeper) on its default schedule."""
    ids = due_deliveries(n, prefix="rr")
    stack.worker("rr1")
    stack.worker("rr2")
    stack.beat()
    enqueue(ids)
    wait_until(lambda: counts(ids).get("sent", 0) >= max(1, n // 5), timeout=60, interval=0.05)
    before = counts(ids)
    redis_server.restart(down_seconds=down_seconds)
    started = time.monotonic()
    took = wait_until(lambda: settled(ids), timeout=timeout, interval=0.5)
    run = summarise("redis-restart", ids, stack.provider,
                    settle_seconds=None if took is None else time.monotonic() - started)
    run.notes = {"queued_at_kill": before.get("queued", 0), "down": f"{down_seconds:g}s"}
    return run


def scenario_provider_outage(stack: Stack, *, n: int, outage: float = 60.0, batch: int = 50, timeout: float = 150,
                             reconcile_every: float = 5.0) -> FaultRun:
    """The provider answers 500 to everything for `outage` seconds, starting just after the first
    calls. The reconciler (with its sweeper) runs every few seconds meanwhile: it must respect
    the batches' backoff."""
    from nurture.services.reconcile import deliveries_reconcile
    from nurture.tasks import enqueue_send_batches

    ids = due_deliveries(n, prefix="po")
    stack.worker("po1")
    stack.worker("po2")
    state = stack.provider.state
    enqueue(ids)
    wait_until(lambda: len(state.requests) >= 1, timeout=60, interval=0.01)
    outage_start = time.time()
    state.fail_until = outage_start + outage
    calls_before = len(state.requests)
    stop = threading.Event()
    runs = []

    def reconciler():
        from django.db import connection as thread_connection

        try:
            while not stop.wait(reconcile_every):
                runs.append(deliveries_reconcile(enqueue=enqueue_send_batches))
        finally:
            thread_connection.close()

    thread = threading.Thread(target=reconciler, daemon=True)
    thread.start()
    try:
        time.sleep(max(0.0, outage_start + outage - time.time()))
        with state.lock:
            during = sum(1 for t in state.request_times if outage_start <= t < outage_start + outage)
        ended = time.monotonic()
        took = wait_until(lambda: settled(ids), timeout=timeout, interval=0.5)
    finally:
        stop.set()
        thread.join(timeout=30)
    run = summarise("provider-outage", ids, stack.provider,
                    settle_seconds=None if took is None else time.monotonic() - ended)
    batches = -(-n // batch)
    run.notes = {"outage": f"{outage:g}s", "calls_during_outage": during, "batches": batches,
                 "calls_before": calls_before, "reconciler_reenqueued": sum(r.reenqueued for r in runs)}
    return run


def scenario_periodic_backlog(stack: Stack, *, n: int, rate: float, timeout: float = 60) -> FaultRun:
    """A backlog of n series emails in the broker; then a subscriber falls due (the planner must
    plan them) and someone signs up (their confirmation must go): how long each waits."""
    from nurture.models import Delivery, Subscriber
    from nurture.services.signup import signup_request_store
    from nurture.tasks import enqueue_signup, plan_due_deliveries_task

    ids = due_deliveries(n, prefix="bl")
    stack.worker("bl1")
    stack.worker("bl2")
    enqueue(ids)
    wait_until(lambda: counts(ids).get("sent", 0) >= 50, timeout=60, interval=0.1)
    series = Delivery.objects.get(pk=ids[0]).subscriber.series
    due = Subscriber.objects.create(email="due-now@example.org", stage="in_treatment", language="en", status="active",
                                    series=series, next_step_position=0, next_send_at=timezone.now(),
                                    confirmed_at=timezone.now())
    published = time.monotonic()
    plan_due_deliveries_task.delay()
    # A sign-up as the form stores it: its worker task (on the service queue) sends the confirmation.
    signup_request_store(email="just-signed-up@example.org", first_name="", stage="in_treatment", language="en",
                         time_zone="UTC", consent_text="I agree.", enqueue=enqueue_signup)
    seen: dict[str, float] = {}

    def both_done() -> bool:
        if "plan" not in seen and Delivery.objects.filter(subscriber=due).exists():
            seen["plan"] = time.monotonic() - published
        if "confirmation" not in seen and stack.provider.state.requests_for("just-signed-up@example.org") > 0:
            seen["confirmation"] = time.monotonic() - published
        return len(seen) == 2

    wait_until(both_done, timeout=timeout, interval=0.05)
    planned_after, confirmed_after = seen.get("plan"), seen.get("confirmation")
    backlog = counts(ids).get("queued", 0) + counts(ids).get("sending", 0)
    run = summarise("periodic-backlog", ids, stack.provider, settle_seconds=None)
    run.lost = 0  # the backlog is not waited for here
    run.notes = {"plan_waited": _secs(planned_after), "confirmation_waited": _secs(confirmed_after),
                 "backlog_left": backlog, "ceiling": f"{rate:g}/s"}
    return run


def _secs(value):
    return "never" if value is None else f"{value:.1f}s"


def scenario_withheld_answer(stack: Stack, *, n: int, deliver_webhook, timeout: float = 60) -> FaultRun:
    """The provider accepts one email but withholds its answer past EMAIL_TIMEOUT (a read timeout):
    the row must become `unknown`, never be resent, and the provider's delivery event settles it."""
    from nurture.models import Delivery

    ids = due_deliveries(n, prefix="wh")
    held = Delivery.objects.select_related("subscriber").get(pk=ids[n // 2])
    state = stack.provider.state
    state.withhold_for = {held.subscriber.email}
    stack.worker("wh1")
    enqueue(ids)
    started = time.monotonic()
    became_unknown = wait_until(lambda: settled(ids, also=("unknown",)), timeout=timeout, interval=0.1)
    held.refresh_from_db()
    status_before = held.status
    [accepted] = [a for a in state.accepted if a.to == held.subscriber.email]
    deliver_webhook(held, accepted)
    held.refresh_from_db()
    run = summarise("withheld-answer", ids, stack.provider, settle_seconds=time.monotonic() - started)
    run.notes = {"held_status_before_event": status_before, "held_status_after_event": held.status,
                 "unknown_after": _secs(became_unknown), "held_requests": state.requests_for(held.subscriber.email)}
    return run


@contextlib.contextmanager
def stack_for(provider, broker_url: str, log_dir: Path, **env):
    stack = Stack(provider=provider, broker_url=broker_url, log_dir=log_dir, **env)
    try:
        yield stack
    finally:
        stack.close()
