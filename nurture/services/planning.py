"""Planning: turn due subscribers into Delivery rows and move their schedule on.

The due set is `status=active and next_send_at <= now`, read in bounded batches through the
partial index subscriber_due_idx, so a run costs what is due rather than what exists. Rows are
locked with SKIP LOCKED where the database supports it, so several planners never plan twice;
the unique (subscriber, step) constraint is the last guard everywhere.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from nurture.models import Delivery, Step, StepArticle, Subscriber

logger = logging.getLogger(__name__)


@dataclass
class PlanResult:
    planned_delivery_ids: list[int] = field(default_factory=list)
    subscribers_seen: int = 0
    completed: int = 0


def day() -> timedelta:
    return timedelta(seconds=settings.NURTURE_DAY_SECONDS)


def _due_batch(now: datetime, batch_size: int):
    qs = (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE, next_send_at__lte=now)
        .order_by("next_send_at")
        .only("id", "series_id", "next_step_position", "next_send_at", "stage", "language")
    )
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs[:batch_size])


def _received_article_ids(subscriber_id: int) -> set[int]:
    return set(
        StepArticle.objects.filter(
            step__deliveries__subscriber_id=subscriber_id,
            step__deliveries__status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT],
        ).values_list("article_id", flat=True)
    )


def _step_is_sendable(step: Step, received: set[int]) -> bool:
    """A step goes out when it carries at least one published article the subscriber has not had."""
    return any(a.is_published and a.pk not in received for a in step.articles.all())


def plan_subscriber(subscriber: Subscriber, now: datetime) -> int | None:
    """Plan the next step for one locked subscriber. Returns the new delivery id, if any."""
    steps = list(
        Step.objects.filter(series_id=subscriber.series_id, position__gte=subscriber.next_step_position)
        .order_by("position")
        .prefetch_related("articles")
    )
    received = _received_article_ids(subscriber.pk)
    delivery_id = None
    remaining = iter(steps)
    for step in remaining:
        if not _step_is_sendable(step, received):
            continue
        delivery, created = Delivery.objects.get_or_create(subscriber_id=subscriber.pk, step=step)
        delivery_id = delivery.pk if created else None
        subscriber.next_step_position = step.position + 1
        following = next(remaining, None)
        if following is None:
            subscriber.next_send_at = None
        else:
            subscriber.next_send_at = now + following.delay_days * day()
        break
    else:
        subscriber.next_step_position = steps[-1].position + 1 if steps else subscriber.next_step_position
        subscriber.next_send_at = None  # series complete (or nothing sendable yet)
    Subscriber.objects.filter(pk=subscriber.pk).update(
        next_step_position=subscriber.next_step_position, next_send_at=subscriber.next_send_at
    )
    return delivery_id


def plan_due_deliveries(*, now: datetime | None = None, batch_size: int | None = None, max_batches: int = 1000) -> PlanResult:
    now = now or timezone.now()
    batch_size = batch_size or settings.NURTURE_PLAN_BATCH_SIZE
    result = PlanResult()
    for _ in range(max_batches):
        with transaction.atomic():
            batch = _due_batch(now, batch_size)
            if not batch:
                break
            for subscriber in batch:
                result.subscribers_seen += 1
                delivery_id = plan_subscriber(subscriber, now)
                if delivery_id:
                    result.planned_delivery_ids.append(delivery_id)
                if subscriber.next_send_at is None:
                    result.completed += 1
        if len(batch) < batch_size:
            break
    logger.info("planned deliveries=%d subscribers=%d", len(result.planned_delivery_ids), result.subscribers_seen)
    return result
