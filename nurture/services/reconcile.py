"""Reconciling: the safety net for deliveries a lost worker, a lost broker message or a silent
provider left behind. Run periodically (schedule.PERIODIC_TASKS, every 30 s), one run at a time.

1. Journalled answers (nurture/sending/journal.py) are applied first: the provider accepted them.
2. A delivery in `sending` for longer than NURTURE_SENDING_TIMEOUT_SECONDS belongs to a worker
   that died (SIGKILL, OOM, machine lost) or hung. It is never blindly resent:
   - the provider's message id is recorded: the provider accepted it -> sent;
   - never handed to the provider (no provider_call_started_at: the worker died while rendering
     or waiting for a send slot) -> back to queued and re-enqueued: exactly once still;
   - handed over but no answer recorded: the provider may or may not have it -> `unknown`,
     like a read timeout. Not resent.
3. An `unknown` delivery is settled by the provider's webhook events when they come
   (services/webhooks.py: matched by our Message-ID, the delivery id in the metadata, or the
   provider's id). With no event within NURTURE_UNKNOWN_OUTCOME_SECONDS of the call it becomes
   failed and `unanswered` ("unknown outcome" in its reason), for staff to check in the provider's
   activity log (our Message-ID is stored) and requeue if it never arrived. A second copy of a health email is worse for
   the reader than a late one.
4. The sweeper: a queued delivery whose send task was lost (the broker restarted without
   persistence, a process died between commit and enqueue, the worker holding its retry was
   killed) is re-enqueued once it is due (next_attempt_at, else queued_at) by more than
   NURTURE_SWEEP_AFTER_SECONDS and the broker's `sends` queue is empty: the broker is FIFO, so
   while a backlog is waiting, a row behind it is not late, and duplicates do not pile up. A
   batch's backoff is respected: its rows share one next_attempt_at. The claim keeps a duplicate
   task harmless. With a broker whose queue cannot be read (the local filesystem demo), the old
   rule: re-enqueue once overdue by the sending timeout.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from nurture import sending
from nurture.selectors import deliveries as mail_health
from nurture.models import Delivery

logger = logging.getLogger(__name__)

UNKNOWN_OUTCOME_REASON = "unknown outcome: worker lost mid-send"
UNKNOWN_EXPIRED_REASON = "unknown outcome: no word from the provider"
RECONCILE_LIMIT = 5000  # per run; a later run takes the rest
SEND_QUEUE = "sends"


@dataclass
class ReconcileResult:
    journal_applied: int = 0
    marked_sent: int = 0
    requeued: int = 0
    unknown_outcome: int = 0
    unknown_expired: int = 0
    reenqueued: int = 0


def send_queue_length(broker_url: str | None = None) -> int | None:
    """Messages waiting in the broker's `sends` queue, or None if it cannot be read."""
    url = broker_url or settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return int(client.llen(SEND_QUEUE))
    finally:
        client.close()


def deliveries_reconcile(
    *, now: datetime | None = None, sending_timeout_seconds: int | None = None, enqueue=None,
    queue_length=send_queue_length
) -> ReconcileResult:
    """`enqueue(delivery_ids)` sends ids to the send task (the Celery task passes it in); it is
    called once the writes are committed (each UPDATE here commits on its own). None: nothing is
    enqueued. `queue_length()` reads the broker's send queue (None: it cannot be read)."""
    result = ReconcileResult(journal_applied=sending.answers_journal_replay())
    now = now or timezone.now()
    timeout = timedelta(seconds=sending_timeout_seconds or settings.NURTURE_SENDING_TIMEOUT_SECONDS)
    cutoff = now - timeout
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING, sending_started_at__lt=cutoff)

    # Provider accepted (its id is recorded): sent, when it was handed over.
    accepted = list(stale.exclude(provider_message_id="").values_list("id", "provider_message_id",
                                                                      "provider_call_started_at")[:RECONCILE_LIMIT])
    for delivery_id, provider_id, called_at in accepted:
        result.marked_sent += sending.deliveries_mark_sent(
            provider_message_ids={delivery_id: provider_id}, sent_at=called_at or now, among=stale
        )

    # Never handed to the provider: safe to send again.
    requeue_ids = list(stale.filter(provider_message_id="", provider_call_started_at__isnull=True).values_list("id",
        flat=True)[:RECONCILE_LIMIT])
    if requeue_ids:
        result.requeued = sending.deliveries_requeue_unhanded(
            delivery_ids=requeue_ids, among=stale, now=now, reason="requeued: worker lost before the provider call"
        )

    # Handed over, answer lost: unknown, for the provider's word (never resent).
    result.unknown_outcome = sending.deliveries_mark_unknown(among=stale, reason=UNKNOWN_OUTCOME_REASON)

    # Unknown for longer than the window, no event: failed, for staff to decide.
    window = now - timedelta(seconds=settings.NURTURE_UNKNOWN_OUTCOME_SECONDS)
    result.unknown_expired = sending.deliveries_expire_unknown(waited_since=window, now=now,
                                                               reason=UNKNOWN_EXPIRED_REASON)

    # Queued with no live task: the sweeper (not while the complaint brake holds series sending).
    if enqueue is not None and mail_health.sending_brake_engaged() is None:
        waiting = queue_length()
        if waiting is None:
            overdue_before = cutoff
        elif waiting == 0:
            overdue_before = now - timedelta(seconds=settings.NURTURE_SWEEP_AFTER_SECONDS)
        else:
            overdue_before = None  # a backlog is waiting in the broker: nobody behind it is late
        ids = list(requeue_ids)
        if overdue_before is not None:
            ids += list(
                Delivery.objects.filter(status=Delivery.Status.QUEUED)
                .annotate(due_at=Coalesce(F("next_attempt_at"), F("queued_at")))
                .filter(due_at__lt=overdue_before)
                .exclude(pk__in=requeue_ids)
                .order_by("id")
                .values_list("id", flat=True)[:RECONCILE_LIMIT]
            )
        if ids:
            enqueue(sorted(ids))
            result.reenqueued = len(ids)
    if any(vars(result).values()):
        logger.warning("reconciled %s", result)
    return result
