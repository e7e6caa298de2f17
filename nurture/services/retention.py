"""Data retention: keep only what the service needs, delete what it no longer does.

Run daily by beat (`nurture.purge_expired_data`, schedule.PERIODIC_TASKS) and by hand with
`manage.py purge_expired_data`; both call `expired_data_purge`. What goes, and why
(docs/webhooks-and-retention.md):

- **unconfirmed sign-ups**: NURTURE_PENDING_RETENTION_DAYS after their confirmation link expired
  (NURTURE_CONFIRM_MAX_AGE_DAYS after their latest sign-up), the subscriber row with its consent
  records. Counted from the latest sign-up request, so someone who signs up again gets a fresh period.
- **people who left**: NURTURE_UNSUBSCRIBED_RETENTION_DAYS after they unsubscribed, the whole row
  (name, stage, time zone, consent records) and their deliveries, which say which stage's series
  they had. Nothing stops a new sign-up, and that needs a new confirmation, so no email reaches
  them without it. The same for suppressed subscribers, counted from their suppression; the
  Suppression row (address and reason only) stays, so a suppressed address is never written to.
- **a reported bereavement**: NURTURE_UNSUBSCRIBED_RETENTION_DAYS after the report, the whole row
  with the report; the address stays on the suppression list (address and a neutral reason only).
- **replies** to our emails: NURTURE_REPLY_RETENTION_DAYS after they arrived, unless still waiting
  for a person (services/replies.py).
- **provider webhook events**: NURTURE_EVENT_RETENTION_DAYS after they arrived.
- **sign-up requests** (the choices waiting for a confirmation): like unconfirmed sign-ups,
  NURTURE_PENDING_RETENTION_DAYS after their confirmation link expired. A confirmed one goes at once.
- **readers' feedback comments**: NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS after they were written
  (the yes/no or 1-to-5 answer stays, for the counts); at once when the person is erased.
- **the staff audit trail**: NURTURE_AUDIT_RETENTION_DAYS (two years) after each entry
  (nurture.services.audit.audit_purge_expired, the trail's only delete).

Deletes go in bounded batches (ids first, then one DELETE per batch, each its own transaction),
so a large backlog neither holds long locks nor loads every row; a run stops after `max_batches`
per kind and the next run carries on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from nurture.models import Feedback, ProviderEvent, SignupRequest, Subscriber, Suppression
from nurture.services.audit import audit_purge_expired
from nurture.services.replies import expired_replies
from nurture.services.feedback import feedback_purge_comments
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_BATCHES = 200  # per kind and run: at most 100,000 rows of each, the rest goes next run


@dataclass
class PurgeResult:
    pending_subscribers: int = 0
    unsubscribed_subscribers: int = 0
    suppressed_subscribers: int = 0
    deceased_subscribers: int = 0
    provider_events: int = 0
    signup_requests: int = 0
    audit_entries: int = 0
    replies: int = 0
    feedback_comments: int = 0


def expired_pending_subscribers(*, now: datetime) -> QuerySet[Subscriber]:
    cutoff = now - timedelta(days=settings.NURTURE_CONFIRM_MAX_AGE_DAYS + settings.NURTURE_PENDING_RETENTION_DAYS)
    recent_sign_up = SignupRequest.objects.filter(subscriber=OuterRef("pk"), created_at__gte=cutoff)
    return Subscriber.objects.filter(status=Subscriber.Status.PENDING,
                                     created_at__lt=cutoff).exclude(Exists(recent_sign_up))


def expired_signup_requests(*, now: datetime) -> QuerySet[SignupRequest]:
    """Unconfirmed sign-ups, like unconfirmed subscribers: NURTURE_PENDING_RETENTION_DAYS after
    their confirmation link expired (their choices can no longer apply to anyone)."""
    cutoff = now - timedelta(days=settings.NURTURE_CONFIRM_MAX_AGE_DAYS + settings.NURTURE_PENDING_RETENTION_DAYS)
    return SignupRequest.objects.filter(created_at__lt=cutoff)


def expired_unsubscribed_subscribers(*, now: datetime) -> QuerySet[Subscriber]:
    cutoff = now - timedelta(days=settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS)
    return Subscriber.objects.filter(status=Subscriber.Status.UNSUBSCRIBED).filter(
        Q(unsubscribed_at__lt=cutoff) | Q(unsubscribed_at__isnull=True, created_at__lt=cutoff)
    )


def expired_suppressed_subscribers(*, now: datetime) -> QuerySet[Subscriber]:
    cutoff = now - timedelta(days=settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS)
    old_suppression = Suppression.objects.filter(email__iexact=OuterRef("email"), created_at__lt=cutoff)
    return Subscriber.objects.filter(status=Subscriber.Status.SUPPRESSED).filter(Exists(old_suppression))


def expired_deceased_subscribers(*, now: datetime) -> QuerySet[Subscriber]:
    """A reported bereavement: like people who left, NURTURE_UNSUBSCRIBED_RETENTION_DAYS after the
    report (the whole row, with the report); the address stays on the suppression list only."""
    cutoff = now - timedelta(days=settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS)
    return Subscriber.objects.filter(status=Subscriber.Status.DECEASED, bereavement__reported_at__lt=cutoff)


def expired_provider_events(*, now: datetime) -> QuerySet[ProviderEvent]:
    return ProviderEvent.objects.filter(received_at__lt=now - timedelta(days=settings.NURTURE_EVENT_RETENTION_DAYS))


def _delete_in_batches(expired, *, now: datetime, batch_size: int, max_batches: int) -> int:
    """`expired(now=...)` builds the queryset afresh each batch; the DELETE repeats its conditions,
    so a row that changed since its id was read (e.g. signed up again) is kept."""
    deleted = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(expired(now=now).order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            _total, per_model = expired(now=now).filter(pk__in=ids).delete()
        model = expired(now=now).model._meta.label
        deleted += per_model.get(model, 0)
        if len(ids) < batch_size:
            break
    return deleted


def expired_data_purge(*, now: datetime | None = None, batch_size: int = BATCH_SIZE,
                       max_batches: int = MAX_BATCHES) -> PurgeResult:
    now = now or timezone.now()
    options = {"now": now, "batch_size": batch_size, "max_batches": max_batches}
    result = PurgeResult(
        pending_subscribers=_delete_in_batches(expired_pending_subscribers, **options),
        unsubscribed_subscribers=_delete_in_batches(expired_unsubscribed_subscribers, **options),
        suppressed_subscribers=_delete_in_batches(expired_suppressed_subscribers, **options),
        deceased_subscribers=_delete_in_batches(expired_deceased_subscribers, **options),
        provider_events=_delete_in_batches(expired_provider_events, **options),
        signup_requests=_delete_in_batches(expired_signup_requests, **options),
        audit_entries=audit_purge_expired(**options),
        replies=_delete_in_batches(expired_replies, **options),
        feedback_comments=feedback_purge_comments(now=now),
    )
    # A run that deleted nothing is routine: DEBUG keeps `make run` readable.
    logger.log(logging.INFO if any(vars(result).values()) else logging.DEBUG, "purge expired data %s", result)
    return result


@transaction.atomic
def subscriber_erase(*, subscriber_id: int) -> bool:
    """A person asks us to delete their data: the subscriber row goes at once with their consent
    records and deliveries. Their address stays on the suppression list, with no other data, so
    they are never emailed again (a later sign-up gets no confirmation email). Returns whether
    there was anything to erase."""
    subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    address_suppress(email=subscriber.email, reason="asked us to delete their data", source="erasure")
    # Their answers stay for the counts (the delivery link is cleared); what they wrote goes now.
    Feedback.objects.filter(delivery__subscriber_id=subscriber.pk).exclude(comment="").update(comment="")
    subscriber.delete()
    logger.info("subscriber erased on request subscriber=%s", subscriber_id)
    return True
