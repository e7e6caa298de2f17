"""Celery tasks: thin interfaces over the services. They take ids, never model instances."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from nurture import providers
from nurture.services import planning, reconcile, retention, sending, subscribers


def chunks(ids: list[int], size: int):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# The enqueuers a service is handed as its `enqueue` argument (services never import this module).
def enqueue_send_batches(delivery_ids: list[int], countdown: float | None = None) -> None:
    """Batches of ids, not one task per email."""
    for batch in chunks(list(delivery_ids), settings.NURTURE_SEND_BATCH_SIZE):
        send_deliveries_task.apply_async((batch,), countdown=countdown)


def enqueue_carer_confirmation(handoff_id: int) -> None:
    send_carer_confirmation_email.delay(handoff_id)


def enqueue_confirmation(subscriber_id: int) -> None:
    send_confirmation_email.delay(subscriber_id)


@shared_task(name="nurture.plan_due_deliveries")
def plan_due_deliveries_task() -> int:
    # Pauses whose end has come resume first, so they are planned in this same run.
    subscribers.subscribers_resume_due()
    # Each planning batch enqueues its send batches when it commits (memory holds one batch).
    return planning.deliveries_plan_due(enqueue=enqueue_send_batches).planned


@shared_task(name="nurture.send_deliveries", acks_late=True, reject_on_worker_lost=True)
def send_deliveries_task(delivery_ids: list[int]) -> dict:
    # acks_late + reject_on_worker_lost: a batch whose worker dies goes back to the broker; the
    # claim inside makes the redelivered batch skip what was sent or is being sent.
    outcome = sending.deliveries_send(delivery_ids=delivery_ids)
    if outcome.retry_ids:
        enqueue_send_batches(outcome.retry_ids, countdown=outcome.retry_countdown)
    return outcome.counts


@shared_task(name="nurture.reconcile_deliveries")
def reconcile_deliveries_task() -> dict:
    result = reconcile.deliveries_reconcile(enqueue=enqueue_send_batches)
    return result.__dict__


# Acknowledged on receipt (not acks_late): a confirmation has no delivery row to claim, so a
# redelivered task could send a second one. A transient provider error is retried instead.
def _send_or_retry(task, send, **ids) -> bool:
    """Send; on a transient provider error retry the task with backoff, anything else fails it."""
    try:
        return send(**ids)
    except Exception as exc:
        if providers.classify_send_error(exc) != providers.TRANSIENT:
            raise
        raise task.retry(exc=exc, countdown=sending.retry_countdown(task.request.retries + 1))


@shared_task(name="nurture.send_confirmation_email", bind=True, max_retries=5, acks_late=False)
def send_confirmation_email(self, subscriber_id: int) -> bool:
    return _send_or_retry(self, sending.confirmation_email_send, subscriber_id=subscriber_id)


# The carer's confirmation: like the subscriber's, acknowledged on receipt, transient errors retried.
@shared_task(name="nurture.send_carer_confirmation_email", bind=True, max_retries=5, acks_late=False)
def send_carer_confirmation_email(self, handoff_id: int) -> bool:
    return _send_or_retry(self, sending.carer_confirmation_email_send, handoff_id=handoff_id)


@shared_task(name="nurture.purge_expired_data")
def purge_expired_data_task() -> dict:
    # The same function as `manage.py purge_expired_data`.
    return retention.expired_data_purge().__dict__
