"""A sends-per-second ceiling for the email provider, shared by every worker.

With a Redis broker the ceiling is a token bucket kept in Redis and updated by one Lua script, so
all workers on all machines draw from the same bucket atomically (Redis's own clock, no clock skew
between machines). Each call reserves one token and is told how long to wait for it; tokens may go
below zero by at most one per waiting sender, so waiters queue fairly instead of polling.

With the filesystem broker (the local demo, no Redis) there is nothing to share: the ceiling is
kept per worker process, in memory. Several local worker processes then may together exceed it.
"""
from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

BUCKET_KEY = "nurture:provider-send-bucket"

# KEYS[1] bucket; ARGV[1] rate (tokens/s), ARGV[2] capacity. Returns seconds to wait (string: Lua
# numbers are truncated to integers on the way back).
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
tokens = tokens - 1
local wait = 0
if tokens < 0 then wait = -tokens / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class RedisTokenBucket:
    def __init__(self, url: str, rate: float, key: str = BUCKET_KEY):
        import redis

        self.rate = rate
        self.capacity = max(1.0, rate)  # at most one second's worth in a burst
        self.key = key
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(TOKEN_BUCKET_LUA)

    def reserve(self) -> float:
        return float(self.script(keys=[self.key], args=[self.rate, self.capacity]))

    def acquire(self) -> float:
        """Block until this sender may call the provider; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)
        return wait


class LocalTokenBucket:
    """The same bucket in one process (filesystem broker: no shared store)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def reserve(self) -> float:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate) - 1
            self.stamp = now
            return -self.tokens / self.rate if self.tokens < 0 else 0.0

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)
        return wait


_bucket = None
_bucket_config = None


def provider_bucket():
    """The bucket for this process, rebuilt if the settings changed (tests)."""
    global _bucket, _bucket_config
    config = (settings.CELERY_BROKER_URL, settings.NURTURE_SENDS_PER_SECOND)
    if _bucket is None or _bucket_config != config:
        url, rate = config
        if url.startswith(("redis://", "rediss://")):
            _bucket = RedisTokenBucket(url, rate)
        else:
            _bucket = LocalTokenBucket(rate)
        _bucket_config = config
    return _bucket


def wait_for_send_slot() -> float:
    return provider_bucket().acquire()
