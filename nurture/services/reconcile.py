"""Reconciling deliveries a lost worker left behind. Run periodically (schedule.PERIODIC_TASKS).

A delivery in `sending` for longer than NURTURE_SENDING_TIMEOUT_SECONDS belongs to a worker that
died (SIGKILL, OOM, machine lost) or hung. It is never blindly resent:

- the provider's message id is recorded: the provider accepted it -> sent;
- it was never handed to the provider (no provider_call_started_at: the worker died while
  rendering or waiting for a send slot) -> back to queued and re-enqueued: exactly once still;
- it was handed to the provider but no answer was recorded: the provider may or may not have it
  and anymail offers no general way to ask. We choose AT MOST ONCE: failed with reason
  "unknown outcome: worker lost mid-send", for staff to check in the provider's activity log
  (our Message-ID is stored) and requeue if it never arrived. A second copy of a health email is
  worse for the reader than a late one, and the window is one HTTP call wide.

Queued deliveries whose send task was lost (e.g. the process died between the planner's commit
and its enqueue, or a retry's countdown message died with a worker) are re-enqueued once they
are overdue by the same timeout; the claim keeps a duplicate task harmless.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from nurture.models import Delivery
from nurture.services.deliveries import deliveries_mark_sent

logger = logging.getLogger(__name__)

UNKNOWN_OUTCOME_REASON = "unknown outcome: worker lost mid-send"
RECONCILE_LIMIT = 5000  # per run; a later run takes the rest


@dataclass
class ReconcileResult:
    marked_sent: int = 0
    requeued: int = 0
    unknown_outcome: int = 0
    reenqueued: int = 0


def deliveries_reconcile(
    *, now: datetime | None = None, sending_timeout_seconds: int | None = None, enqueue=None
) -> ReconcileResult:
    """`enqueue(delivery_ids)` sends ids to the send task (the Celery task passes it in); it is
    called once the writes are committed (each UPDATE here commits on its own). None: nothing is enqueued."""
    now = now or timezone.now()
    timeout = timedelta(seconds=sending_timeout_seconds or settings.NURTURE_SENDING_TIMEOUT_SECONDS)
    cutoff = now - timeout
    result = ReconcileResult()
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING, sending_started_at__lt=cutoff)

    # Provider accepted (its id is recorded): sent, when it was handed over.
    accepted = list(stale.exclude(provider_message_id="").values_list("id", "provider_message_id", "provider_call_started_at")[:RECONCILE_LIMIT])
    for delivery_id, provider_id, called_at in accepted:
        result.marked_sent += deliveries_mark_sent(
            provider_message_ids={delivery_id: provider_id}, sent_at=called_at or now, among=stale
        )

    # Never handed to the provider: safe to send again.
    requeue_ids = list(stale.filter(provider_message_id="", provider_call_started_at__isnull=True).values_list("id", flat=True)[:RECONCILE_LIMIT])
    if requeue_ids:
        result.requeued = stale.filter(pk__in=requeue_ids, provider_call_started_at__isnull=True).update(
            status=Delivery.Status.QUEUED, next_attempt_at=now, failure_reason="requeued: worker lost before the provider call"
        )

    # Handed over, answer lost: at most once.
    result.unknown_outcome = stale.filter(provider_message_id="", provider_call_started_at__isnull=False).update(
        status=Delivery.Status.FAILED, failed_at=now, failure_reason=UNKNOWN_OUTCOME_REASON
    )

    # Queued but overdue by the timeout: its task was lost. Enqueue again (the claim dedupes).
    overdue = list(
        Delivery.objects.filter(status=Delivery.Status.QUEUED)
        .annotate(due_at=Coalesce(F("next_attempt_at"), F("queued_at")))
        .filter(Q(due_at__lt=cutoff) | Q(pk__in=requeue_ids))
        .order_by("id")
        .values_list("id", flat=True)[:RECONCILE_LIMIT]
    )
    if overdue and enqueue is not None:
        enqueue(overdue)
        result.reenqueued = len(overdue)
    if any((result.marked_sent, result.requeued, result.unknown_outcome, result.reenqueued)):
        logger.warning("reconciled %s", result)
    return result
