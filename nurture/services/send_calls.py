"""Provider calls for a claimed, re-checked batch: several in flight per worker, under the shared
ceiling, each answer recorded as soon as its call returns (services/sending.py tells the story).

The first call of a batch goes alone (a probe): only after the provider accepted it do several go
at once (up to NURTURE_SEND_CONCURRENCY, a thread pool per worker process), so a provider that is
down sees one call per batch per backoff step. A chunk's rate-limit slots are taken at once, its
rows are stamped in one UPDATE, then its calls run in the pool; pool threads only call the
provider, every database write happens in the task's own thread.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone

from nurture import metrics
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery
from nurture.providers import (
    BULK, PERMANENT, REFUSED, TRANSIENT, classify_send_error, environment_read_once, message_stream_set,
)
from nurture.services import throttle
from nurture.services.deliveries import (
    NOT_CLAIMED,
    Claimed,
    SentAnswer,
    deliveries_record_sent,
    deliveries_settle,
    deliveries_release,
    deliveries_stamp_handed,
    with_db_retry,
)
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

RETRY = "retry"


def retry_countdown(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, then a random point in its
    upper half so a crowd of retries spreads out instead of returning together."""
    ceiling = min(settings.NURTURE_RETRY_MAX_SECONDS, settings.NURTURE_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def release_countdown() -> float:
    """After an infrastructure error: a short pause, jittered, the same for the whole batch."""
    base = settings.NURTURE_RELEASE_BACKOFF_SECONDS
    return random.uniform(base / 2, base)


def _error_summary(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"[:500]


@dataclass
class BatchOutcome:
    counts: dict[str, int] = field(default_factory=dict)
    retry_ids: list[int] = field(default_factory=list)  # re-enqueue these after retry_countdown
    retry_countdown: float = 0.0
    error: BaseException | None = None  # an infrastructure error: the task fails after re-enqueueing

    def count(self, status: str, n: int = 1) -> None:
        if n:
            key = str(status)  # "sent", not Delivery.Status.SENT, in logs and task results
            self.counts[key] = self.counts.get(key, 0) + n


class Slots:
    """The provider's shared ceiling, as the pipeline asks it: take n slots now, or say how long
    to wait. `blocking` wraps a wait-for-one-slot hook (tests stall in it)."""

    def __init__(self, wait_for_slot=None):
        self.wait_for_slot = wait_for_slot

    def most_at_once(self) -> int:
        return 1 if self.wait_for_slot else throttle.slots_per_chunk()

    def try_take(self, n: int) -> float:
        if self.wait_for_slot:
            for _ in range(n):
                self.wait_for_slot()
            return 0.0
        return throttle.try_send_slots(n)

    def take(self, n: int) -> None:
        while (wait := self.try_take(n)) > 0:
            time.sleep(wait)


# --- the thread pool: provider calls overlap ------------------------------------------------------

_pool: futures.ThreadPoolExecutor | None = None
_pool_key: tuple | None = None
_local = threading.local()


def _executor() -> futures.ThreadPoolExecutor:
    """One pool per worker process (made after the fork), sized by NURTURE_SEND_CONCURRENCY."""
    global _pool, _pool_key
    import os

    key = (os.getpid(), settings.NURTURE_SEND_CONCURRENCY)
    if _pool is None or _pool_key != key:
        _pool = futures.ThreadPoolExecutor(max_workers=settings.NURTURE_SEND_CONCURRENCY, thread_name_prefix="send")
        _pool_key = key
    return _pool


class Connections:
    """One email connection per pool thread for the batch (anymail sessions and SMTP sockets are
    not shared between threads); all closed when the batch ends."""

    def __init__(self):
        self.opened = []
        self.lock = threading.Lock()
        self.token = object()

    def for_this_thread(self):
        if getattr(_local, "token", None) is not self.token:
            conn = get_connection(timeout=settings.EMAIL_TIMEOUT)
            conn.open()
            environment_read_once(conn)
            with self.lock:
                self.opened.append(conn)
            _local.token, _local.connection = self.token, conn
        return _local.connection

    def close(self):
        for conn in self.opened:
            try:
                conn.close()
            except Exception:  # closing a broken connection: nothing left to do
                logger.debug("closing an email connection failed", exc_info=True)


def _call(item: Claimed, connections: Connections) -> BaseException | None:
    """In a pool thread: one provider call. No database here."""
    try:
        item.message.connection = connections.for_this_thread()
        item.message.send()
        return None
    except Exception as exc:
        return exc


# --- recording answers ----------------------------------------------------------------------------


def _provider_id(message) -> str:
    status = getattr(message, "anymail_status", None)
    return str(status.message_id) if status is not None and status.message_id else ""


def _record(results: list[tuple[Claimed, BaseException | None]], *, stamp: datetime, outcome: BatchOutcome) -> float | None:
    """Write the answers of calls that returned: accepted ones first (never lost: retried, then
    journalled), then errors. Returns a backoff countdown if the provider answered a transient
    error, else None."""
    accepted = [
        SentAnswer(item.pk, item.delivery.subscriber_id, _provider_id(item.message), item.message.nurture_article_versions)
        for item, exc in results if exc is None
    ]
    deliveries_record_sent(answers=accepted)
    outcome.count(Delivery.Status.SENT, len(accepted))
    countdown = None
    for item, exc in results:
        if exc is None:
            continue
        kind, summary = classify_send_error(exc), _error_summary(exc)
        attempts = item.delivery.attempts + 1
        logger.warning(
            "send delivery=%s attempt=%d error kind=%s type=%s status=%s", item.pk, attempts, kind, type(exc).__name__,
            getattr(exc, "status_code", None), extra={"delivery_id": item.pk},
        )
        metrics.count_provider_error(kind)
        status, reason = _settle_error(item, kind, summary, attempts)
        if status == RETRY:
            wait = retry_countdown(attempts)
            countdown = wait if countdown is None else max(countdown, wait)
            with_db_retry(lambda: deliveries_release(delivery_ids=[item.pk], stamp=stamp, countdown=wait, reason=reason, handed=True), what="retry later")
        else:
            with_db_retry(lambda: deliveries_settle(delivery_ids=[item.pk], stamp=stamp, status=status, reason=reason), what="recording an error")
        outcome.count(status)
    return countdown


def _settle_error(item: Claimed, kind: str, summary: str, attempts: int) -> tuple[str, str]:
    if kind == TRANSIENT and attempts < settings.NURTURE_SEND_MAX_ATTEMPTS:
        return RETRY, f"attempt {attempts}: {summary}"
    if kind == TRANSIENT:
        return Delivery.Status.FAILED, f"gave up after {attempts} attempts: {summary}"
    if kind == REFUSED:
        with_db_retry(lambda: address_suppress(email=item.delivery.to_address, reason="refused by the email provider", source="provider_refused"), what="suppressing")
        return Delivery.Status.FAILED, f"recipient refused: {summary}"
    if kind == PERMANENT:
        return Delivery.Status.FAILED, summary
    # No answer we can read (a read timeout): the provider may have it. Never resent blindly; the
    # provider's webhook settles it, or the reconciler fails it after NURTURE_UNKNOWN_OUTCOME_SECONDS.
    return Delivery.Status.UNKNOWN, f"unknown outcome: {summary}"


def _build(item: Claimed) -> bool:
    try:
        item.message = build_delivery_email(item.delivery, articles=item.articles, to=item.recipients)
        message_stream_set(item.message, stream=BULK)  # series emails go on the provider's bulk path
        return True
    except Exception:  # a bug or bad content: nothing was sent; staff see why
        logger.exception("building delivery=%s failed", item.pk, extra={"delivery_id": item.pk})
        return False


class ProviderHealth:
    """What this worker process last heard from the provider. A batch starts with one call alone
    (a probe) unless the process's last answer was an acceptance, less than PROBE_AFTER_SECONDS ago:
    a provider that is down (or has just been) sees one call per batch per backoff step, and a
    healthy one is not paced by a probe every batch."""

    PROBE_AFTER_SECONDS = 30.0

    def __init__(self):
        self.accepted_at: float | None = None
        self.lock = threading.Lock()

    def heard(self, results) -> None:
        with self.lock:
            for _item, exc in results:
                if exc is None:
                    self.accepted_at = time.monotonic()
                elif classify_send_error(exc) == TRANSIENT:
                    self.accepted_at = None  # the next batch probes again
                    return

    def needs_probe(self) -> bool:
        with self.lock:
            return self.accepted_at is None or time.monotonic() - self.accepted_at > self.PROBE_AFTER_SECONDS

    def forget(self) -> None:
        with self.lock:
            self.accepted_at = None


provider_health = ProviderHealth()

# Answers of calls that returned are written together, at most this long after the first of them
# (or sooner: when the pool is half free, at the end, or on an error): one mark-sent per group of
# calls, not per call.
RECORD_WITHIN_SECONDS = 0.1


def send_one_by_one(items: list[Claimed], *, stamp: datetime, outcome: BatchOutcome, slots: Slots) -> None:
    """One call per email, up to NURTURE_SEND_CONCURRENCY in flight. Unless the provider has just
    accepted a call from this process, the first goes alone (a probe). Free threads are refilled
    half a pool at a time: the answers that came back are written (one mark-sent), the next chunk is
    stamped (one UPDATE) and handed over. A transient error stops new calls: the ones in flight
    finish and are recorded, the rest back off with the failed one."""
    pool, connections = _executor(), Connections()
    width = settings.NURTURE_SEND_CONCURRENCY
    pending, in_flight, answered = deque(items), {}, []
    ramped, backoff, first_answer_at = not provider_health.needs_probe(), None, None

    def record() -> None:
        nonlocal answered, backoff, first_answer_at
        if answered:
            results, answered, first_answer_at = answered, [], None
            countdown = _record(results, stamp=stamp, outcome=outcome)
            if countdown is not None:
                backoff = countdown if backoff is None else max(backoff, countdown)

    try:
        while in_flight or (pending and backoff is None):
            wait = None
            room = (width if ramped else 1) - len(in_flight)
            refill_at = min(len(pending), max(1, width // 2) if ramped else 1)
            if pending and backoff is None and room > 0 and (room >= refill_at or not in_flight):
                n = min(room, len(pending), slots.most_at_once())
                wait = slots.try_take(n)
                if not wait:
                    record()  # answers first, then the next calls
                    if backoff is None:
                        chunk = [pending.popleft() for _ in range(n)]
                        _hand_over(chunk, stamp=stamp, outcome=outcome, pool=pool, connections=connections, in_flight=in_flight)
                    continue
            if not in_flight:
                record()
                if wait:
                    time.sleep(wait)
                continue
            if first_answer_at is not None:
                left = max(0.0, first_answer_at + RECORD_WITHIN_SECONDS - time.monotonic())
                wait = left if wait is None else min(wait, left)
            done, _ = futures.wait(list(in_flight), timeout=wait, return_when=futures.FIRST_COMPLETED)
            results = [(in_flight.pop(f), f.result()) for f in done]
            if results:
                provider_health.heard(results)
                ramped = ramped or any(exc is None for _, exc in results)
                answered.extend(results)
                first_answer_at = first_answer_at or time.monotonic()
            errors = any(exc is not None for _, exc in results)
            due = first_answer_at is not None and time.monotonic() - first_answer_at >= RECORD_WITHIN_SECONDS
            if errors or due or len(answered) >= max(1, width // 2) or not in_flight:
                record()
    finally:
        # Whatever stopped us, calls already made are awaited and their answers recorded.
        if in_flight:
            done, _ = futures.wait(list(in_flight))
            answered.extend((in_flight.pop(f), f.result()) for f in done)
        record()
        connections.close()
    if backoff is not None and pending:
        # The untried rest backs off with the failed call, all with one next_attempt_at.
        rest = [item.pk for item in pending]
        released = with_db_retry(lambda: deliveries_release(delivery_ids=rest, stamp=stamp, countdown=backoff, handed=False), what="back off")
        outcome.count(RETRY, len(released))
    if backoff is not None:
        _back_off_together(outcome, [i.pk for i in items], backoff)


def _back_off_together(outcome: BatchOutcome, ids: list[int], countdown: float) -> None:
    """Every row of the batch that went back to queued carries the same next_attempt_at: the
    batch's backoff, which the reconciler respects; the task re-enqueues them after it."""
    def write():
        back = list(Delivery.objects.filter(pk__in=ids, status=Delivery.Status.QUEUED).values_list("pk", flat=True))
        Delivery.objects.filter(pk__in=back, status=Delivery.Status.QUEUED).update(
            next_attempt_at=timezone.now() + timedelta(seconds=countdown))
        return back

    outcome.retry_ids = sorted(set(outcome.retry_ids) | set(with_db_retry(write, what="back off")))
    outcome.retry_countdown = max(outcome.retry_countdown, countdown)


def build_each(chunk: list[Claimed], *, stamp, outcome: BatchOutcome) -> list[Claimed]:
    """Build each delivery's own email; the ones that cannot be built fail with the reason."""
    built = [item for item in chunk if _build(item)]
    broken = [item.pk for item in chunk if item.message is None]
    if broken:
        outcome.count(Delivery.Status.FAILED, with_db_retry(lambda: deliveries_settle(
            delivery_ids=broken, stamp=stamp, status=Delivery.Status.FAILED, reason="could not build the email"), what="build failed"))
    return built


def stamp_handed(items: list[Claimed], *, stamp, outcome: BatchOutcome) -> list[Claimed]:
    """Mark the rows about to go to the provider (one UPDATE); the ones our claim no longer holds drop out."""
    handed = with_db_retry(lambda: deliveries_stamp_handed(items=items, stamp=stamp), what="stamp")
    outcome.count(NOT_CLAIMED, len(items) - len(handed))
    return handed


def _hand_over(chunk, *, stamp, outcome, pool, connections, in_flight) -> None:
    handed = stamp_handed(build_each(chunk, stamp=stamp, outcome=outcome), stamp=stamp, outcome=outcome)
    for item in handed:
        in_flight[pool.submit(_call, item, connections)] = item


