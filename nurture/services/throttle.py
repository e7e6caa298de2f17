"""A sends-per-second ceiling for the email provider, shared by every worker.

The counting is done by the `limits` library's moving-window limiter. With a Redis broker its
storage is that Redis, so all workers on all machines count against one window atomically (limits
runs a Lua script there). With the filesystem broker (the local demo, no Redis) there is nothing to
share: the window is kept in memory per worker process, so several local workers may together
exceed it.

limits counts whole hits per window, so the ceiling is expressed as N sends per second (N =
NURTURE_SENDS_PER_SECOND rounded down), or for a rate below one, 1 send per ceil(1/rate) seconds.
"""
from __future__ import annotations

import math
import time

from django.conf import settings
from limits import RateLimitItemPerHour, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

LIMIT_KEY = "provider-sends"
NAMESPACE = "nurture"


def rate_limit_item(rate: float) -> RateLimitItemPerSecond:
    if rate >= 1:
        return RateLimitItemPerSecond(int(math.floor(rate)), 1, namespace=NAMESPACE)
    return RateLimitItemPerSecond(1, int(math.ceil(1 / rate)), namespace=NAMESPACE)


# A slot that comes free (its send a window old) is taken this long after it expired, not at
# once. The moving window grants each send exactly one window after the one it replaces, so a send
# a few milliseconds slower on its way to the provider than the one before it (the stamp, a
# database write, comes between slot and call) landed in the same second of the provider's: make
# bench saw 15 at a ceiling of 14 with 13 granted. This margin absorbs that much lateness, at the
# cost of about as much of the rate (5% here).
REUSE_MARGIN_SECONDS = 0.05


class SendRateLimit:
    def __init__(self, storage_url: str, rate: float, key: str = LIMIT_KEY):
        self.item = rate_limit_item(rate)
        self.key = key
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        # Not asked again before this (time.time()): the window's next free slot plus the margin.
        # Each process derives it from the shared window, so every sender waits for the same moment.
        self.not_before = 0.0

    def acquire(self, max_wait: float = 600.0, *, cost: int = 1) -> float:
        """Block until this sender may call the provider with `cost` emails (taken in one go, so
        they count in the window the call lands in); returns the seconds waited."""
        if not 1 <= cost <= self.item.amount:
            raise ValueError(f"a call of {cost} emails cannot fit a ceiling of {self.item.amount} per window")
        started = time.monotonic()
        while wait := self.try_acquire(cost=cost):
            if time.monotonic() - started > max_wait:
                raise TimeoutError(f"no send slot within {max_wait}s")
            time.sleep(wait)
        return time.monotonic() - started

    def try_acquire(self, *, cost: int = 1) -> float:
        """Take `cost` slots now if the window has room: returns 0.0. Otherwise takes nothing and
        returns how long to wait before asking again (at most a second). The sender waits on its
        calls in flight meanwhile instead of sleeping."""
        if not 1 <= cost <= self.item.amount:
            raise ValueError(f"a call of {cost} emails cannot fit a ceiling of {self.item.amount} per window")
        now = time.time()
        if now < self.not_before:
            return min(1.0, self.not_before - now)
        if self.limiter.hit(self.item, self.key, cost=cost):
            return 0.0
        self.not_before = self.limiter.get_window_stats(self.item, self.key).reset_time + REUSE_MARGIN_SECONDS
        return min(1.0, max(0.005, self.not_before - now))


# The limiter grants this much under the provider's ceiling (and at least one send a second under
# it, from 2/s up; measured by make bench: docs/benchmarks.md): a call reaches the provider a few milliseconds after its
# slot was granted, later on a busy worker, so sends granted a full window apart can land in one of the provider's
# seconds.
HEADROOM = 0.10


def granted_rate(ceiling: float) -> float:
    """Sends per second the limiter grants for NURTURE_SENDS_PER_SECOND = ceiling: 13 for 14,
    450 for 500; a ceiling under 2/s as it is."""
    if ceiling < 2:
        return ceiling
    whole = math.floor(ceiling)
    return whole - max(1, round(whole * HEADROOM))


def storage_url_for(broker_url: str) -> str:
    return broker_url if broker_url.startswith(("redis://", "rediss://")) else "memory://"


_limit = None
_limit_config = None


def provider_rate_limit() -> SendRateLimit:
    """The limiter for this process, rebuilt if the settings changed (tests)."""
    global _limit, _limit_config
    config = (settings.CELERY_BROKER_URL, settings.NURTURE_SENDS_PER_SECOND)
    if _limit is None or _limit_config != config:
        broker_url, rate = config
        _limit = SendRateLimit(storage_url_for(broker_url), granted_rate(rate))
        _limit_config = config
    return _limit


def wait_for_send_slot() -> float:
    return provider_rate_limit().acquire()


def try_send_slots(count: int) -> float:
    """Non-blocking: 0.0 if `count` slots were taken, else seconds to wait before asking again."""
    return provider_rate_limit().try_acquire(cost=count)


def max_emails_per_call() -> int:
    """A batch call may carry at most one window's worth of emails, or it could never fit."""
    return provider_rate_limit().item.amount


def slots_per_chunk() -> int:
    """One call per email: slots are taken for at most a tenth of a window's emails at once (1 at
    14/s, 50 at 500/s). Calls granted together reach the provider together, a few milliseconds
    late; a burst as wide as the window would then land partly in the provider's next second,
    where the next burst lands too."""
    return max(1, provider_rate_limit().item.amount // 10)


# A send task holds about this many seconds of sending at the ceiling, at most: big batches keep
# many calls in flight without draining the pool between tasks, but at a low ceiling a batch of
# NURTURE_SEND_BATCH_SIZE would hold its worker (and the periodic tasks queued behind it) for minutes.
SEND_BATCH_SECONDS = 10
SMALLEST_SEND_BATCH = 10


def send_batch_size() -> int:
    """Delivery ids per send task: NURTURE_SEND_BATCH_SIZE, or about SEND_BATCH_SECONDS of sending
    at NURTURE_SENDS_PER_SECOND if that is fewer (500 at a high ceiling, 140 at 14/s)."""
    by_ceiling = max(SMALLEST_SEND_BATCH, int(settings.NURTURE_SENDS_PER_SECOND * SEND_BATCH_SECONDS))
    return min(settings.NURTURE_SEND_BATCH_SIZE, by_ceiling)


# --- hourly ceilings: service emails (confirmations, "already subscribed", new links...), and carer
# hand-off emails, each its own so a flood of one never delays the other -------------------------
SERVICE_EMAILS_KEY = "service-emails"
CARER_EMAILS_KEY = "carer-emails"
_HOURLY_SETTINGS = {SERVICE_EMAILS_KEY: "NURTURE_SERVICE_EMAILS_PER_HOUR",
                    CARER_EMAILS_KEY: "NURTURE_CARER_EMAILS_PER_HOUR"}
_hourly: dict[str, tuple] = {}


def _hourly_limiter(key: str) -> tuple[MovingWindowRateLimiter, RateLimitItemPerHour]:
    config = (settings.CELERY_BROKER_URL, getattr(settings, _HOURLY_SETTINGS[key]))
    if key not in _hourly or _hourly[key][0] != config:
        broker_url, per_hour = config
        _hourly[key] = (config, (
            MovingWindowRateLimiter(storage_from_string(storage_url_for(broker_url))),
            RateLimitItemPerHour(per_hour, 1, namespace=NAMESPACE),
        ))
    return _hourly[key][1]


def take_hourly_slot(key: str) -> float:
    """0.0 when one more email fits this hour's ceiling for `key` (shared by every worker through
    Redis) and has been counted; otherwise the seconds until one may fit. The caller waits
    without holding a worker (a retry with that countdown)."""
    limiter, item = _hourly_limiter(key)
    if limiter.hit(item, key):
        return 0.0
    reset_at = limiter.get_window_stats(item, key).reset_time
    return max(1.0, reset_at - time.time())


def take_service_email_slot() -> float:
    """A service email under NURTURE_SERVICE_EMAILS_PER_HOUR (take_hourly_slot)."""
    return take_hourly_slot(SERVICE_EMAILS_KEY)


def take_carer_email_slot() -> float:
    """A carer hand-off email under NURTURE_CARER_EMAILS_PER_HOUR (take_hourly_slot)."""
    return take_hourly_slot(CARER_EMAILS_KEY)


def forget_in_process_limiters() -> None:
    """Start the in-process (memory://) windows afresh: tests, where one process runs many cases."""
    global _limit, _limit_config
    _limit = _limit_config = None
    _hourly.clear()
