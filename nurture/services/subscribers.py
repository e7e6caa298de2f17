"""Writes about subscribers: sign-up, confirmation, leaving, preferences."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from nurture import selectors, tokens
from nurture.models import ConsentRecord, Delivery, Subscriber

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignupResult:
    subscriber_id: int | None
    created: bool


def _confirmation_sent_recently(subscriber: Subscriber) -> bool:
    since = timezone.now() - timedelta(minutes=settings.NURTURE_CONFIRM_RESEND_MINUTES)
    return subscriber.consents.filter(given_at__gte=since).exists()


@transaction.atomic
def subscriber_sign_up(
    *, email: str, first_name: str, stage: str, language: str, time_zone: str, consent_text: str, enqueue
) -> SignupResult:
    """Create (or refresh) a pending subscriber and send the confirmation email once committed
    (`enqueue(subscriber_id)`: the view passes nurture.tasks.enqueue_confirmation).

    A second sign-up with the same address never creates a second row. An active subscriber's
    choices are not changed from an unauthenticated form; they use the preference link instead.
    """
    email = email.strip()
    if selectors.is_suppressed(email=email):
        # Bounced or complained before: store nothing and send nothing (staff can lift it in admin).
        logger.info("sign-up for a suppressed address ignored")
        return SignupResult(subscriber_id=None, created=False)
    existing = selectors.subscriber_by_email(email=email)
    if existing is None:
        try:
            with transaction.atomic():
                subscriber = Subscriber.objects.create(
                    email=email, first_name=first_name, stage=stage, language=language, time_zone=time_zone
                )
        except IntegrityError:  # the same address signed up in a parallel request
            existing = selectors.subscriber_by_email(email=email)
        else:
            ConsentRecord.objects.create(subscriber=subscriber, consent_text=consent_text, language=language)
            transaction.on_commit(lambda: enqueue(subscriber.pk))
            logger.info("sign-up created subscriber=%s", subscriber.pk)
            return SignupResult(subscriber_id=subscriber.pk, created=True)

    if existing.status in (Subscriber.Status.PENDING, Subscriber.Status.UNSUBSCRIBED):
        if _confirmation_sent_recently(existing):
            # The form can be posted by anyone for any address: don't let it flood an inbox.
            logger.info("sign-up repeated within the resend interval subscriber=%s", existing.pk)
            return SignupResult(subscriber_id=existing.pk, created=False)
        # Nothing is sent to them until they confirm from their own inbox, so a sign-up by
        # someone else cannot start emails or use anyone's choices.
        Subscriber.objects.filter(pk=existing.pk).update(
            first_name=first_name, stage=stage, language=language, time_zone=time_zone, status=Subscriber.Status.PENDING
        )
        ConsentRecord.objects.create(subscriber=existing, consent_text=consent_text, language=language)
        transaction.on_commit(lambda: enqueue(existing.pk))
    logger.info("sign-up repeated subscriber=%s status=%s", existing.pk, existing.status)
    return SignupResult(subscriber_id=existing.pk, created=False)


@transaction.atomic
def subscriber_confirm(*, subscriber_id: int) -> Subscriber:
    """Pending -> active at the start of their stage's series. Confirming twice changes nothing."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status != Subscriber.Status.PENDING:
        return subscriber
    now = timezone.now()
    subscriber.status = Subscriber.Status.ACTIVE
    subscriber.confirmed_at = now
    subscriber.series = selectors.series_for(stage=subscriber.stage, language=subscriber.language)
    subscriber.next_step_position = 0
    subscriber.next_send_at = now
    subscriber.unsubscribed_at = None
    subscriber.save()
    subscriber.consents.filter(confirmed_at__isnull=True).update(confirmed_at=now)
    logger.info("subscriber confirmed subscriber=%s", subscriber.pk)
    return subscriber


@transaction.atomic
def subscriber_unsubscribe(*, subscriber_id: int) -> Subscriber:
    """Leave at once: nothing more is planned, and queued deliveries are not sent (send re-checks status)."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status != Subscriber.Status.UNSUBSCRIBED:
        subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.unsubscribed_at = timezone.now()
        subscriber.next_send_at = None
        subscriber.save(update_fields=["status", "unsubscribed_at", "next_send_at"])
        logger.info("subscriber unsubscribed subscriber=%s", subscriber.pk)
    return subscriber


def subscriber_from_token(*, purpose: str, token: str) -> Subscriber:
    """Raises tokens.TokenError for a bad link, including one whose subscriber no longer exists."""
    subscriber_id, _extra = tokens.read_token(purpose=purpose, token=token)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        raise tokens.TokenError()
    return subscriber


def _withdraw_queued(subscriber: Subscriber) -> int | None:
    """Take back deliveries planned but not yet handed to a worker (queued, or waiting out a retry),
    so a pause or a series change does not let an old plan go out. Returns the earliest withdrawn
    step position, to put the subscriber back on it. A delivery already being sent goes."""
    queued = Delivery.objects.filter(subscriber_id=subscriber.pk, status=Delivery.Status.QUEUED)
    positions = list(queued.values_list("step__position", flat=True))
    queued.delete()
    return min(positions) if positions else None


def _move_to_series(subscriber: Subscriber, *, stage: str, language: str) -> bool:
    """Start of the series for (stage, language). History (Delivery rows) stays, and the planner
    passes over any step whose articles they already had, so nothing is repeated. Returns whether
    the series changed. The caller holds the row lock and saves."""
    if (stage, language) == (subscriber.stage, subscriber.language) and subscriber.series_id is not None:
        return False
    _withdraw_queued(subscriber)  # the old series' next email must not follow them
    subscriber.stage, subscriber.language = stage, language
    subscriber.series = selectors.series_for(stage=stage, language=language)
    subscriber.next_step_position = 0
    if subscriber.status == Subscriber.Status.ACTIVE:
        # Due at once; the planner still applies the gap since their last email, their cadence
        # and their daytime window before anything goes.
        subscriber.next_send_at = timezone.now()
    logger.info("subscriber moved series subscriber=%s", subscriber.pk)
    return True


@transaction.atomic
def subscriber_change_stage(*, subscriber_id: int, stage: str, language: str | None = None) -> Subscriber:
    """Staff (admin) and the preference centre move a subscriber through this one path."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if _move_to_series(subscriber, stage=stage, language=language or subscriber.language):
        subscriber.save(update_fields=["stage", "language", "series", "next_step_position", "next_send_at"])
    return subscriber


def delivery_from_view_token(*, token: str) -> Delivery:
    """The delivery a "view in browser" link names. Raises tokens.TokenError for a bad link,
    including one whose delivery is gone or belongs to another subscriber."""
    subscriber_id, extra = tokens.read_token(purpose=tokens.VIEW_ONLINE, token=token)
    if not extra.isdigit():
        raise tokens.TokenError()
    delivery = (
        Delivery.objects.select_related("subscriber", "step__series")
        .filter(pk=int(extra), subscriber_id=subscriber_id)
        .first()
    )
    if delivery is None:
        raise tokens.TokenError()
    return delivery


@transaction.atomic
def subscriber_update_preferences(*, subscriber_id: int, first_name: str, stage: str, language: str, cadence: str) -> Subscriber:
    """Save the preference centre. A new stage or language moves them to the start of that series;
    their history stays, and the planner never repeats an article they already had."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    cadence_changed = cadence != subscriber.cadence
    subscriber.first_name, subscriber.cadence = first_name, cadence
    moved = _move_to_series(subscriber, stage=stage, language=language)
    if cadence_changed and not moved and subscriber.status == Subscriber.Status.ACTIVE and subscriber.next_send_at is not None:
        # Re-planned with the new cadence at once (the planner defers it if it is too soon).
        subscriber.next_send_at = min(subscriber.next_send_at, timezone.now())
    subscriber.save()
    return subscriber


@transaction.atomic
def subscriber_pause(*, subscriber_id: int) -> Subscriber:
    """Pause keeps their place (next_step_position); nothing is planned while paused."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status == Subscriber.Status.ACTIVE:
        subscriber.status = Subscriber.Status.PAUSED
        withdrawn_position = _withdraw_queued(subscriber)
        if withdrawn_position is not None:  # that email waits for the resume instead of being lost
            subscriber.next_step_position = min(subscriber.next_step_position, withdrawn_position)
            subscriber.next_send_at = timezone.now()  # due again as soon as they resume
        subscriber.save(update_fields=["status", "next_step_position", "next_send_at"])
    return subscriber


@transaction.atomic
def subscriber_resume(*, subscriber_id: int) -> Subscriber:
    """Back where they were: the same next step. Due now if it was due while paused; the planner
    still keeps the gap since their last email and their daytime window."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status == Subscriber.Status.PAUSED:
        subscriber.status = Subscriber.Status.ACTIVE
        if subscriber.next_send_at is None or subscriber.next_send_at < timezone.now():
            subscriber.next_send_at = timezone.now()
        subscriber.save(update_fields=["status", "next_send_at"])
    return subscriber
