"""Celery tasks: thin interfaces over the services. They take ids, never model instances."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from nurture.services import planning, sending


def chunks(ids: list[int], size: int):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@shared_task(name="nurture.plan_due_deliveries")
def plan_due_deliveries_task() -> int:
    result = planning.plan_due_deliveries()
    for batch in chunks(result.planned_delivery_ids, settings.NURTURE_SEND_BATCH_SIZE):
        send_deliveries_task.delay(batch)
    return len(result.planned_delivery_ids)


@shared_task(name="nurture.send_deliveries", acks_late=True, reject_on_worker_lost=True)
def send_deliveries_task(delivery_ids: list[int]) -> dict:
    return sending.send_deliveries(delivery_ids=delivery_ids)


@shared_task(name="nurture.send_confirmation_email", acks_late=True, reject_on_worker_lost=True)
def send_confirmation_email(subscriber_id: int) -> bool:
    return sending.send_confirmation(subscriber_id=subscriber_id)
