"""The calls of a batch-endpoint send overlap (nurture/sending/batch_calls.py; docs/scheduler.md,
"Batch endpoints"): call k+1 is built in the task's thread (CPU: each email, its JSON) while call k
is at the provider in a thread of the send pool (nurture/sending/calls.py's, one per worker
process), and each call's answers are written in the task's thread as soon as it is back. As for one
call per email: every row is stamped before its call, pool threads only call the provider (every
database write is in the task's thread), the first call of a batch goes alone (a probe) unless the
provider accepted a call from this process lately, and a transient error stops new calls (those in
flight finish and are recorded, the rest back off together with one next_attempt_at).
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import get_connection

from nurture.sending.calls import Connections, _executor, provider_health
from nurture.sending.db_retry import with_db_retry
from nurture.sending.handover import BatchOutcome, back_off_together, record_answers
from nurture.sending.http_session import session_tuned
from nurture.sending.ledger import Claimed, deliveries_release


@dataclass
class Call:
    """A call built and its rows stamped: `post(connection)` runs in a pool thread (the provider
    call, no database) and returns the answer; `record(answer)` writes it in the task's thread and
    returns a retry countdown or None. An error of the call is recorded for each of `handed`."""

    handed: list[Claimed]
    post: Callable
    record: Callable


@dataclass(frozen=True)
class BackedOff:
    """What a build returns when its call could not go as one (not batchable), went one email at
    a time, and met a transient error: the rest of the batch backs off `countdown` seconds with it."""

    countdown: float


def _post(call: Call, connections: Connections) -> tuple[object, BaseException | None]:
    """In a pool thread: the provider call, with this thread's own connection. No database here."""
    try:
        return call.post(connections.for_this_thread()), None
    except Exception as exc:
        return None, exc


class _InFlight:
    """The batch's calls at the provider, in the order they were made, and the backoff their
    answers asked for."""

    def __init__(self, *, stamp, outcome: BatchOutcome):
        self.calls: dict[futures.Future, Call] = {}
        self.backoff: float | None = None
        # Until the provider accepted a call from this process lately, the first call goes alone.
        self.ramped = not provider_health.needs_probe()
        self.stamp, self.outcome = stamp, outcome

    def back_off(self, countdown: float | None) -> None:
        if countdown is not None:
            self.backoff = countdown if self.backoff is None else max(self.backoff, countdown)

    def record_returned(self, *, wait: bool) -> None:
        """Write the answers of the calls that are back (with `wait`, once at least one is), in
        the order the calls were made."""
        if not self.calls:
            return
        done, _ = futures.wait(list(self.calls), timeout=None if wait else 0, return_when=futures.FIRST_COMPLETED)
        for future in [f for f in self.calls if f in done]:
            call = self.calls.pop(future)
            answer, exc = future.result()
            provider_health.heard([(call, exc)])
            self.ramped = self.ramped or exc is None
            if exc is None:
                self.back_off(call.record(answer))
            else:
                self.back_off(record_answers([(item, exc) for item in call.handed], stamp=self.stamp,
                                             outcome=self.outcome))

    def finish(self) -> None:
        """Every call in flight awaited and its answer written, even if writing another's failed
        (accepted answers that the database will not take go to the journal)."""
        failed = None
        while self.calls:
            try:
                self.record_returned(wait=True)
            except Exception as exc:
                failed = failed or exc
        if failed is not None:
            raise failed


def make_calls(items: list[Claimed], calls: list[list[Claimed]], *, stamp, outcome: BatchOutcome,
               build, hand) -> None:
    """The calls of a batch, overlapping. `build(call, connection)` (this thread, while the calls
    before it are at the provider) returns what to hand over, None (nothing to send), or a
    BackedOff (the call went one by one and met a transient error); `hand(built)` takes the call's
    rate-limit slots and stamps its rows, returning a Call (None if our claim holds none of them).
    The answers of the calls that are back are written before each call is handed over, then as
    they come. An error here (the database) stops the batch the same way, after the calls in flight
    are awaited and recorded, and propagates: the pipeline releases the rows not handed over."""
    pool, connections, flight = _executor(), Connections(), _InFlight(stamp=stamp, outcome=outcome)
    unsent: list[int] = []
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)  # this thread's: payloads are built with it
    try:
        with connection:
            session_tuned(connection)
            for index, call in enumerate(calls):
                built = build(call, connection)  # while the calls before it are at the provider
                flight.record_returned(wait=False)
                while flight.calls and not flight.ramped and flight.backoff is None:
                    flight.record_returned(wait=True)  # the probe goes alone
                if isinstance(built, BackedOff):
                    flight.back_off(built.countdown)
                if flight.backoff is not None:
                    unsent = [item.pk for later in calls[index:] for item in later]
                    break
                handed = hand(built) if built is not None else None
                if handed is not None:
                    flight.calls[pool.submit(_post, handed, connections)] = handed
    finally:
        flight.finish()
        connections.close()
    if flight.backoff is not None:
        # The rows never handed over (this call's and the ones after it) back off with the failed
        # call; every row of the batch back in queued gets one next_attempt_at.
        with_db_retry(lambda: deliveries_release(delivery_ids=unsent, stamp=stamp, countdown=flight.backoff,
                                                 handed=False), what="back off")
        back_off_together(outcome, [item.pk for item in items], flight.backoff)
