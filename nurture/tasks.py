"""Celery tasks: thin interfaces over the services. They take ids, never model instances.

Each task is registered under its name in nurture/queues.py (TaskNames), which also says its queue:
`sends` (series email batches), `service` (service emails), `carers` (carer hand-off emails),
`periodic` (plan, reconcile, purge, results summary...). A worker consumes all four by default,
round-robin between queues that have work, so a periodic task or a service email waits at most for
the send batch a worker is in, never for a backlog of them."""
from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from django.conf import settings

from content import services as content_services
from nurture import send_errors, sending
from nurture.queues import TaskNames
from nurture.services import (
    bereavement, carers, checkins, planning, reconcile, replies, results, retention, signup, subscribers, throttle,
)

logger = logging.getLogger(__name__)

RECONCILE_LOCK = "nurture:reconcile-lock"


def chunks(ids: list[int], size: int):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# The enqueuers a service is handed as its `enqueue` argument (services never import this module).
def enqueue_send_batches(delivery_ids: list[int], countdown: float | None = None) -> None:
    """Batches of ids (throttle.send_batch_size), not one task per email."""
    for batch in chunks(list(delivery_ids), throttle.send_batch_size()):
        send_deliveries_task.apply_async((batch,), countdown=countdown)


def enqueue_signup(request_id: int) -> None:
    process_signup.delay(request_id)


def enqueue_carer_confirmation(handoff_id: int) -> None:
    send_carer_confirmation_email.delay(handoff_id)


def enqueue_carer_notice(handoff_id: int, event: str) -> None:
    send_carer_notice.delay(handoff_id, event)


def enqueue_bereavement_support(bereavement_id: int) -> None:
    send_bereavement_support_email.delay(bereavement_id)


def enqueue_reply_stop_email(reply_id: int) -> None:
    send_reply_stop_email.delay(reply_id)


def enqueue_new_links(subscriber_id: int, mailbox_counted: bool = False) -> None:
    send_new_links.delay(subscriber_id, mailbox_counted)


@contextlib.contextmanager
def single_flight(name: str, *, timeout: int):
    """One holder at a time across all workers (a Redis lock that expires after `timeout` s, so a
    killed holder cannot block for ever). Yields False if someone else holds it. Without a Redis
    broker (the local demo, one machine) there is nothing to share: always True."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        yield True
        return
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    lock = client.lock(name, timeout=timeout, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            with contextlib.suppress(redis.exceptions.RedisError):
                lock.release()
        client.close()


@shared_task(name=TaskNames.PLAN_DUE_DELIVERIES)
def plan_due_deliveries_task() -> int:
    # Pauses whose end has come resume first, so they are planned in this same run.
    subscribers.subscribers_resume_due()
    # Each planning batch enqueues its send batches when it commits (memory holds one batch).
    return planning.deliveries_plan_due(enqueue=enqueue_send_batches).planned


@shared_task(name=TaskNames.SEND_DELIVERIES, acks_late=True, reject_on_worker_lost=True)
def send_deliveries_task(delivery_ids: list[int]) -> dict:
    # acks_late + reject_on_worker_lost: a batch whose worker dies goes back to the broker; the
    # claim inside makes the redelivered batch skip what was sent or is being sent.
    if sending.answers_journal_pending():
        try:
            sending.answers_journal_replay()
        except sending.infrastructure_errors():
            logger.exception("journal replay failed; kept for the next task")
    outcome = sending.deliveries_send(delivery_ids=delivery_ids)
    if outcome.retry_ids:
        enqueue_send_batches(outcome.retry_ids, countdown=outcome.retry_countdown)
    if outcome.error is not None:
        # Released and re-enqueued above: now the task may fail, with the real error.
        raise outcome.error
    return outcome.counts


@shared_task(name=TaskNames.RECONCILE_DELIVERIES)
def reconcile_deliveries_task() -> dict:
    with single_flight(RECONCILE_LOCK, timeout=max(60, settings.NURTURE_SWEEP_AFTER_SECONDS * 2)) as mine:
        if not mine:
            return {"skipped": "another reconcile is running"}
        return reconcile.deliveries_reconcile(enqueue=enqueue_send_batches).__dict__


TRANSIENT_RETRIES = 5


def _retry_signup_email(task, exc: BaseException | None, retry_in: float, args: tuple | None = None):
    """A full hourly ceiling (retry_in > 0) waits as long as it takes, in steps the broker's
    visibility timeout allows; a transient provider error is retried TRANSIENT_RETRIES times."""
    if exc is not None:
        if send_errors.classify_send_error(exc) != send_errors.TRANSIENT or task.request.retries >= TRANSIENT_RETRIES:
            raise exc
        raise task.retry(args=args, exc=exc, countdown=sending.retry_countdown(task.request.retries + 1))
    if task.request.is_eager:
        return  # eager mode (unit tests) re-runs a retry at once: leave the email waiting instead
    raise task.retry(args=args, countdown=min(retry_in, settings.NURTURE_RETRY_MAX_SECONDS))


# The form stored the sign-up; this decides what it means and sends its one email. Deciding runs
# once (the request row records it), so a redelivered task (acks_late) neither decides twice nor
# sends twice once the email is recorded as sent.
@shared_task(name=TaskNames.PROCESS_SIGNUP, bind=True, max_retries=None, acks_late=True)
def process_signup(self, request_id: int) -> bool:
    signup.signup_request_process(request_id=request_id)
    try:
        outcome = signup.signup_request_email(request_id=request_id)
    except Exception as exc:
        _retry_signup_email(self, exc, 0.0)
    if outcome.retry_in:
        _retry_signup_email(self, None, outcome.retry_in)
    return outcome.sent


@shared_task(name=TaskNames.SEND_NEW_LINKS, bind=True, max_retries=None, acks_late=False)
def send_new_links(self, subscriber_id: int, mailbox_counted: bool = False) -> bool:
    try:
        outcome = signup.subscriber_new_links_email(subscriber_id=subscriber_id, mailbox_counted=mailbox_counted)
    except Exception as exc:
        # Counted against the mailbox already: a retry must not be refused by its own count.
        _retry_signup_email(self, exc, 0.0, args=(subscriber_id, True))
    if outcome.retry_in:
        _retry_signup_email(self, None, outcome.retry_in, args=(subscriber_id, True))
    return outcome.sent


# The carer's confirmation (a carer hand-off asked for from the preference centre): acknowledged on
# receipt, on the `carers` queue under the carer emails' own hourly ceiling, a transient provider
# error retried like a sign-up email's.
@shared_task(name=TaskNames.SEND_CARER_CONFIRMATION_EMAIL, bind=True, max_retries=None, acks_late=False)
def send_carer_confirmation_email(self, handoff_id: int, mailbox_counted: bool = False) -> bool:
    # A retry is counted against the mailbox already: it must not be refused by its own count.
    return _send_or_retry(self,
        lambda: carers.carer_confirmation_email_send(handoff_id=handoff_id, mailbox_counted=mailbox_counted),
                          retry_args=(handoff_id, True))


def _send_or_retry(task, send, *, retry_args: tuple) -> bool:
    """A service email's send (`send()` -> EmailOutcome), retried as a sign-up email is."""
    try:
        outcome = send()
    except Exception as exc:
        _retry_signup_email(task, exc, 0.0, args=retry_args)
    if outcome.retry_in:
        _retry_signup_email(task, None, outcome.retry_in, args=retry_args)
    return outcome.sent


# The subscriber's notice of a step of their carer hand-off (request, in force, stopped): `carers` queue.
@shared_task(name=TaskNames.SEND_CARER_NOTICE, bind=True, max_retries=None, acks_late=False)
def send_carer_notice(self, handoff_id: int, event: str) -> bool:
    return _send_or_retry(self, lambda: carers.carer_notice_email_send(handoff_id=handoff_id, event=event),
                          retry_args=(handoff_id, event))


# The one bereavement-support email a carer asked for: sent once (the row is stamped in the same
# transaction as the send); a transient provider error is retried like the sign-up emails.
@shared_task(name=TaskNames.SEND_BEREAVEMENT_SUPPORT_EMAIL, bind=True, max_retries=TRANSIENT_RETRIES, acks_late=False)
def send_bereavement_support_email(self, bereavement_id: int) -> bool:
    try:
        return bereavement.bereavement_support_email_send(bereavement_id=bereavement_id)
    except Exception as exc:
        _retry_signup_email(self, exc, 0.0)
        raise


# The one email after a "stop" reply: sent once (stamped with the send), transient errors retried.
@shared_task(name=TaskNames.SEND_REPLY_STOP_EMAIL, bind=True, max_retries=TRANSIENT_RETRIES, acks_late=False)
def send_reply_stop_email(self, reply_id: int) -> bool:
    try:
        return replies.reply_stop_email_send(reply_id=reply_id)
    except Exception as exc:
        _retry_signup_email(self, exc, 0.0)
        raise


@shared_task(name=TaskNames.SEND_CHECKINS)
def send_checkins_task() -> int:
    """"Has anything changed?" emails now due (beat, "Send check-ins")."""
    return checkins.checkins_send_due()


@shared_task(name=TaskNames.PURGE_EXPIRED_DATA)
def purge_expired_data_task() -> dict:
    # The same function as `manage.py purge_expired_data`.
    return retention.expired_data_purge().__dict__


@shared_task(name=TaskNames.RESULTS_SUMMARISE)
def results_summarise_task() -> dict:
    # The results page's daily summary (services/results.py): the recent days, hourly.
    outcome = results.results_summarise()
    return {"first_day": str(outcome.first_day), "last_day": str(outcome.last_day), "rows": outcome.rows}


@shared_task(name=TaskNames.REVIEW_REMINDERS)
def review_reminders_task() -> dict:
    # Daily: reminds clinical reviewers of articles falling due for review (content.services).
    return content_services.review_reminders_send()
