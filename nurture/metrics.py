"""Operational metrics in Prometheus format (served at /metrics, nurture/web/metrics.py).

Everything is read when Prometheus scrapes, from places every process shares, so one web process
answers for the whole deployment (any number of web and worker machines):

- the database: deliveries by status, deliveries stuck in `sending`, the planner's lag (how long
  the oldest due subscriber has been waiting);
- the broker: messages waiting per Celery queue (service emails waiting = the `service` queue);
- counters the workers keep in Redis (the broker's Redis): emails sent and provider errors by kind,
  and the sends of the last full minute (sends per second).

Labels are fixed vocabularies (a status, a queue name, an error kind, an email kind): never an
address, a name or a stage.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from nurture.queues import QueueNames

logger = logging.getLogger(__name__)

# The Celery queues (settings.CELERY_TASK_QUEUES; the compose workers consume them).
QUEUES = QueueNames.all()
ERROR_KINDS = ("transient", "permanent", "refused", "unknown")
EMAIL_KINDS = ("series", "confirmation", "links", "carer_confirmation", "carer_notice")  # links: new links

KEY_PREFIX = "nurture:metrics:"
SENT_KEY = KEY_PREFIX + "emails_sent"  # hash: email kind -> count
ERRORS_KEY = KEY_PREFIX + "provider_errors"  # hash: error kind -> count
MINUTE_KEY = KEY_PREFIX + "series_sent_minute:"  # + minute number; expires after a few minutes


# --- counting (called by the sender in the worker processes) -------------------------------------

_redis = None
_redis_url = None


def _counter_store():
    """The broker's Redis, or None (the local demo's filesystem broker: counters are not kept)."""
    global _redis, _redis_url
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    if _redis is None or _redis_url != url:
        import redis

        _redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        _redis_url = url
    return _redis


def _safely(action) -> None:
    # A metric must never stop an email or its bookkeeping.
    try:
        store = _counter_store()
        if store is not None:
            action(store)
    except Exception as exc:
        logger.debug("metrics counter not updated: %s", type(exc).__name__)


def count_emails_sent(n: int, *, kind: str = "series") -> None:
    if n <= 0:
        return
    minute = int(time.time() // 60)

    def action(store):
        pipe = store.pipeline(transaction=False)
        pipe.hincrby(SENT_KEY, kind, n)
        if kind == "series":
            pipe.incrby(MINUTE_KEY + str(minute), n)
            pipe.expire(MINUTE_KEY + str(minute), 600)
        pipe.execute()

    _safely(action)


def count_provider_error(kind: str) -> None:
    _safely(lambda store: store.hincrby(ERRORS_KEY, kind if kind in ERROR_KINDS else "unknown", 1))


# --- reading (at scrape time) -------------------------------------------------------------------


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each queue (None when the broker does not answer)."""
    from celery import current_app as app  # the project's app (config.celery) once settings load

    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for queue in QUEUES:
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except Exception:  # never declared: nothing has been sent to it
                    depths[queue] = 0
                    channel = conn.channel()  # a refused passive declare may close the channel
    except Exception as exc:
        logger.warning("metrics: broker did not answer: %s", type(exc).__name__)
        return {queue: None for queue in QUEUES}
    return depths


class NurtureCollector:
    def collect(self):
        from nurture.selectors.deliveries import (
            deliveries_stuck_sending,
            delivery_counts_by_status,
            sending_brake_engaged,
            series_mail_health,
        )
        from nurture.selectors.subscribers import oldest_due_send_time

        now = timezone.now()
        by_status = GaugeMetricFamily("nurture_deliveries", "Deliveries by status (rows in the database).",
                                      labels=["status"])
        counts = delivery_counts_by_status()
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield by_status

        oldest = oldest_due_send_time(now=now)
        yield GaugeMetricFamily(
            "nurture_planner_lag_seconds",
            "How long the oldest due subscriber has been waiting to be planned (0 when nobody is due).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )
        stuck = deliveries_stuck_sending(
            older_than=now - timedelta(seconds=settings.NURTURE_SENDING_TIMEOUT_SECONDS)
        ).count
        yield GaugeMetricFamily(
            "nurture_deliveries_stuck_sending",
            "Deliveries in `sending` for longer than NURTURE_SENDING_TIMEOUT_SECONDS (a lost or hung worker).",
            value=stuck,
        )

        depths = queue_depths()
        queue_gauge = GaugeMetricFamily("nurture_queue_messages", "Tasks waiting in each Celery queue.",
                                        labels=["queue"])
        for queue, depth in depths.items():
            if depth is not None:
                queue_gauge.add_metric([queue], depth)
        yield queue_gauge
        if depths.get(QueueNames.SERVICE) is not None:
            yield GaugeMetricFamily(
                "nurture_service_emails_waiting",
                "Service emails waiting to be sent (tasks in the service queue).",
                value=depths[QueueNames.SERVICE],
            )
        health = series_mail_health(since=now - timedelta(days=1))
        yield GaugeMetricFamily(
            "nurture_series_complaint_rate",
            "Complaints per delivered series email over the last day (the provider's events; the brake's figure).",
            value=health.complaint_rate,
        )
        yield GaugeMetricFamily(
            "nurture_series_hard_bounce_rate",
            "Hard bounces per delivered series email over the last day (the provider's events).",
            value=health.hard_bounce_rate,
        )
        yield GaugeMetricFamily(
            "nurture_series_sending_braked",
            "1 while the complaint brake holds series sending (staff resume it in the admin).",
            value=1 if sending_brake_engaged() is not None else 0,
        )
        yield GaugeMetricFamily(
            "nurture_broker_up", "1 when the broker answered this scrape.", value=0 if depths[QUEUES[0]] is None else 1
        )
        yield from self.counters()

    def counters(self):
        try:
            store = _counter_store()
            if store is None:
                return
            pipe = store.pipeline(transaction=False)
            pipe.hgetall(SENT_KEY)
            pipe.hgetall(ERRORS_KEY)
            last_minute = int(time.time() // 60) - 1
            pipe.get(MINUTE_KEY + str(last_minute))
            sent, errors, minute = pipe.execute()
        except Exception as exc:
            logger.warning("metrics: counters not read: %s", type(exc).__name__)
            return
        sent = {k.decode(): int(v) for k, v in sent.items()}
        errors = {k.decode(): int(v) for k, v in errors.items()}
        sent_family = CounterMetricFamily("nurture_emails_sent", "Emails the provider accepted, by kind.",
                                          labels=["kind"])
        for kind in EMAIL_KINDS:
            sent_family.add_metric([kind], sent.get(kind, 0))
        yield sent_family
        error_family = CounterMetricFamily("nurture_provider_errors", "Errors from the email provider, by kind.",
                                           labels=["kind"])
        for kind in ERROR_KINDS:
            error_family.add_metric([kind], errors.get(kind, 0))
        yield error_family
        yield GaugeMetricFamily(
            "nurture_sends_per_second",
            "Series emails sent per second over the last full minute.",
            value=int(minute or 0) / 60,
        )


def render() -> bytes:
    """The exposition text for one scrape (a registry per scrape: nothing is cached between them)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NurtureCollector())
    return generate_latest(registry)
