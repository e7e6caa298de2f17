"""Provider calls one email at a time for a claimed, re-checked batch: several in flight per worker,
under the shared ceiling, each answer recorded as soon as its call returns (nurture/sending/pipeline.py
tells the story).

The first call of a batch goes alone (a probe): only after the provider accepted it do several go
at once (up to NURTURE_SEND_CONCURRENCY, a thread pool per worker process), so a provider that is
down sees one call per batch per backoff step. A chunk's rate-limit slots are taken at once, its
rows are stamped in one UPDATE, then its calls run in the pool; pool threads only call the
provider, every database write happens in the task's own thread.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent import futures
from datetime import datetime

import requests
from django.conf import settings
from django.core.mail import get_connection

from nurture.providers import Provider, configured
from nurture.send_errors import TRANSIENT, classify_send_error
from nurture.sending.db_retry import with_db_retry
from nurture.sending.handover import RETRY, BatchOutcome, back_off_together, build_each, record_answers, stamp_handed
from nurture.sending.http_session import session_tuned
from nurture.sending.ledger import Claimed, deliveries_release
from nurture.services import throttle

logger = logging.getLogger(__name__)


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
    """One email connection per pool thread (anymail sessions and SMTP sockets are not shared
    between threads). An HTTP API's connection stays with its thread for the next batches while
    the email settings are the same and it was used less than KEEP_IDLE_SECONDS ago: a batch does
    not open a new connection (a TLS handshake) per thread, and urllib3's pool under it replaces a
    connection the provider has closed. Any other connection (SMTP) is closed when its batch ends."""

    KEEP_IDLE_SECONDS = 2.0  # shorter than the keep-alive of the servers in front of providers

    def __init__(self):
        self.opened = []  # this batch's connections that end with it
        self.lock = threading.Lock()
        self.token = object()
        self.settings_key = _email_settings_key()
        self.payloads = SharedPayloads(configured())

    def for_this_thread(self):
        now = time.monotonic()
        if getattr(_local, "batch", None) is self.token:
            _local.used_at = now
            return _local.connection
        conn = getattr(_local, "connection", None)
        if conn is not None and not (_kept(conn) and _local.settings_key == self.settings_key
                                     and now - _local.used_at < self.KEEP_IDLE_SECONDS):
            _close_quietly(conn)
            conn = None
        if conn is None:
            conn = get_connection(timeout=settings.EMAIL_TIMEOUT)
            conn.open()
            session_tuned(conn)
        if not _kept(conn):
            with self.lock:
                self.opened.append(conn)
        self.payloads.attach(conn)
        _local.connection, _local.batch, _local.settings_key, _local.used_at = conn, self.token, self.settings_key, now
        return conn

    def close(self):
        for conn in self.opened:
            _close_quietly(conn)


def _email_settings_key() -> tuple:
    """What an email connection is made from: a kept one is used again only while these hold."""
    return settings.EMAIL_BACKEND, settings.EMAIL_TIMEOUT, repr(getattr(settings, "ANYMAIL", None))


def _kept(conn) -> bool:
    """A connection over requests' pool (anymail's HTTP backends) outlives its batch."""
    return isinstance(getattr(conn, "session", None), requests.Session)


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection: nothing left to do
        logger.debug("closing an email connection failed", exc_info=True)


class SharedPayloads:
    """anymail builds each call's payload from the email, parsing the same From and Reply-To
    addresses with Python's email package every time (about an eighth of a call's CPU). Here the
    batch's first email is built by anymail's payload code and the next ones' payloads are derived
    from it where the provider can do so exactly (Provider.single_payload_like: the messages
    batch's derivation), else anymail builds them too. Likewise the answer: anymail parses the
    address the provider names in it (another tenth of a call); where the provider can read a
    plain acceptance exactly as anymail would (Provider.single_recipient_status), it does.
    anymail's backend still sends each email (pre_send, the post, its errors, post_send)."""

    def __init__(self, provider):
        self.provider = provider
        self.template: tuple | None = None  # (message, payload, defaults) of the batch's first built email

    def attach(self, connection) -> None:
        """Wrap `connection`'s payload builder (anymail's _send calls it after pre_send) and its
        reading of the answer."""
        if type(self.provider).single_recipient_status is not Provider.single_recipient_status:
            self._attach_status(connection)
        if type(self.provider).single_payload_like is Provider.single_payload_like:
            return  # a provider that derives nothing: anymail as it is
        # anymail's own builder, kept aside the first time: a kept connection is attached once per batch.
        build = connection.__dict__.setdefault("_anymail_build_message_payload", connection.build_message_payload)

        def build_message_payload(message, defaults):
            template = self.template
            if template is not None and defaults == template[2]:
                payload = self.provider.single_payload_like(template[:2], message, defaults, connection)
                if payload is not None:
                    return payload
            payload = build(message, defaults)
            if template is None:
                self.template = (message, payload, defaults)
            return payload

        connection.build_message_payload = build_message_payload

    def _attach_status(self, connection) -> None:
        parse = connection.__dict__.setdefault("_anymail_parse_recipient_status", connection.parse_recipient_status)
        provider = self.provider

        def parse_recipient_status(response, payload, message):
            status = provider.single_recipient_status(response, payload, message, connection)
            return parse(response, payload, message) if status is None else status

        connection.parse_recipient_status = parse_recipient_status


def _call(item: Claimed, connections: Connections) -> BaseException | None:
    """In a pool thread: one provider call. No database here."""
    try:
        item.message.connection = connections.for_this_thread()
        item.message.send()
        return None
    except Exception as exc:
        return exc


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
    built, takes its send slots, is stamped (one UPDATE) and handed over. A transient error stops new
    calls: the ones in flight finish and are recorded, the rest back off with the failed one."""
    pool, connections = _executor(), Connections()
    width = settings.NURTURE_SEND_CONCURRENCY
    pending, in_flight, answered = deque(items), {}, []
    ready: deque[Claimed] = deque()  # built, waiting for their send slots: not stamped, not handed over
    ramped, backoff, first_answer_at = not provider_health.needs_probe(), None, None

    def record() -> None:
        nonlocal answered, backoff, first_answer_at
        if answered:
            results, answered, first_answer_at = answered, [], None
            countdown = record_answers(results, stamp=stamp, outcome=outcome)
            if countdown is not None:
                backoff = countdown if backoff is None else max(backoff, countdown)

    try:
        while in_flight or ((pending or ready) and backoff is None):
            wait = None
            room = (width if ramped else 1) - len(in_flight)
            waiting = len(pending) + len(ready)
            refill_at = min(waiting, max(1, width // 2) if ramped else 1)
            if waiting and backoff is None and room > 0 and (room >= refill_at or not in_flight):
                record()  # answers first, then the next calls
                if backoff is not None:
                    continue
                n = min(room, waiting, slots.most_at_once())
                if len(ready) < n:
                    ready.extend(build_each([pending.popleft() for _ in range(min(n - len(ready), len(pending)))],
                                            stamp=stamp, outcome=outcome))
                n = min(n, len(ready))
                # Slots are taken last, once the emails are built: a call reaches the provider as
                # soon after its slot as it can (calls granted a window apart must not land in one
                # of the provider's seconds).
                wait = slots.try_take(n) if n else 0.0
                if not wait:
                    _hand_over([ready.popleft() for _ in range(n)], stamp=stamp, outcome=outcome, pool=pool,
                               connections=connections, in_flight=in_flight)
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
    if backoff is not None and (pending or ready):
        # The untried rest (built or not) backs off with the failed call, all with one next_attempt_at.
        rest = [item.pk for item in (*ready, *pending)]
        released = with_db_retry(lambda: deliveries_release(delivery_ids=rest, stamp=stamp, countdown=backoff,
                                                            handed=False), what="back off")
        outcome.count(RETRY, len(released))
    if backoff is not None:
        back_off_together(outcome, [i.pk for i in items], backoff)


def _hand_over(chunk, *, stamp, outcome, pool, connections, in_flight) -> None:
    handed = stamp_handed(chunk, stamp=stamp, outcome=outcome)
    for item in handed:
        in_flight[pool.submit(_call, item, connections)] = item


