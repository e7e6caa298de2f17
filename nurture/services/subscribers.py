"""Writes about subscribers: confirmation, leaving, preferences, links. (Sign-up: services/signup.py.)"""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from nurture import selectors, tokens
from nurture.models import ConsentRecord, Delivery, SignupRequest, Subscriber

logger = logging.getLogger(__name__)


@transaction.atomic
def subscriber_confirm(*, subscriber_id: int, request_id: int | None = None) -> Subscriber:
    """Pending (or unsubscribed) -> active at the start of their stage's series, from the
    confirmation link in their inbox. The choices of that sign-up (`request_id`, carried by the
    link) apply only now; until then nothing we held about them changed. Confirming twice, or a
    link whose sign-up was superseded by a later confirmation, changes nothing."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    request = None
    if request_id is not None:
        request = SignupRequest.objects.filter(
            pk=request_id, subscriber_id=subscriber.pk, state=SignupRequest.State.CONFIRM
        ).first()
        if request is None:
            return subscriber
    if subscriber.status != Subscriber.Status.PENDING and not (
        request is not None and subscriber.status == Subscriber.Status.UNSUBSCRIBED
    ):
        return subscriber
    now = timezone.now()
    if request is not None:
        subscriber.first_name, subscriber.time_zone = request.first_name, request.time_zone
        subscriber.stage, subscriber.language = request.stage, request.language
    subscriber.status = Subscriber.Status.ACTIVE
    subscriber.confirmed_at = now
    subscriber.series = selectors.series_for(stage=subscriber.stage, language=subscriber.language)
    subscriber.next_step_position = 0
    subscriber.next_send_at = now
    subscriber.unsubscribed_at = None
    subscriber.save()
    if request is not None:
        # The evidence of opt-in: what they agreed to when they signed up, confirmed now.
        consent = ConsentRecord.objects.create(
            subscriber=subscriber, consent_text=request.consent_text, language=request.language, confirmed_at=now
        )
        ConsentRecord.objects.filter(pk=consent.pk).update(given_at=request.created_at)
        # Applied: the choices are no longer needed, and other open sign-ups' links stop working.
        SignupRequest.objects.filter(subscriber_id=subscriber.pk).delete()
    subscriber.consents.filter(confirmed_at__isnull=True).update(confirmed_at=now)
    logger.info("subscriber confirmed subscriber=%s", subscriber.pk)
    return subscriber


def confirm_from_token(*, token: str) -> tuple[Subscriber, int | None]:
    """The subscriber and sign-up request a confirmation link names. Raises tokens.TokenError."""
    subscriber_id, extra = tokens.read_token(purpose=tokens.CONFIRM, token=token)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        raise tokens.TokenRevoked()
    return subscriber, (int(extra) if extra.isdigit() else None)


@transaction.atomic
def subscriber_links_renew(*, subscriber_id: int, enqueue) -> Subscriber:
    """"Send me new links": every preference and view-online link sent so far stops working, and
    a new preference link is emailed. (Unsubscribe links keep working: they can only stop emails,
    and must for 60 days and more.) The page that asked is itself revoked, so it can ask once:
    no mailbox throttle, the hourly ceiling still applies. `enqueue(subscriber_id, mailbox_counted)`:
    the view passes nurture.tasks.enqueue_fresh_links."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    subscriber.link_version += 1
    subscriber.save(update_fields=["link_version"])
    transaction.on_commit(lambda: enqueue(subscriber.pk, True))
    logger.info("subscriber links renewed subscriber=%s", subscriber.pk)
    return subscriber


def subscriber_links_request(*, token: str, purposes: tuple[str, ...], enqueue) -> None:
    """"Email me a new link" from a link of one of `purposes`, current or expired. The worker
    decides whether anyone gets an email (services/signup.subscriber_links_email)."""
    for purpose in purposes:
        try:
            subscriber_id, _extra = tokens.read_token(purpose=purpose, token=token)
        except tokens.TokenExpired as error:
            subscriber_id = error.subscriber_id
        except tokens.TokenError:
            continue
        with transaction.atomic():
            transaction.on_commit(lambda: enqueue(subscriber_id, False))
        return


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
        raise tokens.TokenRevoked()
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
        raise tokens.TokenInvalid()
    delivery = (
        Delivery.objects.select_related("subscriber", "step__series")
        .filter(pk=int(extra), subscriber_id=subscriber_id)
        .first()
    )
    if delivery is None:
        raise tokens.TokenRevoked()
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
