"""Writes about subscribers: confirmation, leaving, preferences, links, pause, treatment date.
(Sign-up: services/signup.py; carer hand-off: services/carers.py.)"""
from __future__ import annotations

import datetime as dt
import logging

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from content.models import Stage
from nurture import rules, tokens, wording
from nurture.models import ConsentRecord, Delivery, SignupRequest, Subscriber
from nurture.services.carers import carer_handoffs_end
from nurture.selectors.series import series_for
from nurture.services.consent import consent_record
from nurture.services.errors import InputError

logger = logging.getLogger(__name__)


# Pause lengths offered by the "Pause these emails" link: 2 weeks, 1 month, 3 months.
PAUSE_WEEKS = (2, 4, 13)
# A treatment date may be at most this far ahead.
TREATMENT_DATE_MAX_DAYS = 365


def treatment_date_problem(value: dt.date | None, *, today: dt.date | None = None):
    """None when the date is acceptable (or not given); else the error to show."""
    if value is None:
        return None
    today = today or timezone.localdate()
    if value < today:
        return _("The date cannot be in the past.")
    if value > today + timedelta(days=TREATMENT_DATE_MAX_DAYS):
        return _("The date must be within a year from today.")
    return None


@transaction.atomic
def subscriber_confirm(*, subscriber_id: int, request_id: int | None = None, source: str = "confirm_link",
                       choices: dict | None = None) -> Subscriber:
    """Pending (or unsubscribed) -> active at the start of their stage's series, from the
    confirmation link in their inbox. The choices of that sign-up (`request_id`, carried by the
    link) apply only now; until then nothing we held about them changed. `choices` (some of
    CONFIRM_CHOICES, checked by the confirm page's form) are what the person chose on the confirm
    page, which showed the sign-up's: they win, so a sign-up someone else posted with their address
    never applies unseen. Confirming twice, or a link whose sign-up was superseded by a later
    confirmation, changes nothing."""
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
    chosen = {**(_choices_of(request) if request is not None else {}), **(choices or {})}
    if chosen:
        for name in CONFIRM_CHOICES:
            setattr(subscriber, name, chosen.get(name, getattr(subscriber, name)))
        # Health data: kept only for the stage it plans (recently diagnosed).
        if subscriber.stage != Stage.RECENTLY_DIAGNOSED:
            subscriber.treatment_date = None
    subscriber.status = Subscriber.Status.ACTIVE
    subscriber.confirmed_at = now
    subscriber.series = series_for(stage=subscriber.stage, language=subscriber.language)
    subscriber.next_step_position = 0
    subscriber.next_send_at = now
    subscriber.unsubscribed_at = None
    subscriber.save()
    if request is not None:
        # The evidence of opt-in: what they agreed to when they signed up, confirmed now.
        consent = ConsentRecord.objects.create(
            subscriber=subscriber, kind=ConsentRecord.Kind.SIGNUP, source="signup_page",
            consent_text=request.consent_text, language=request.language, confirmed_at=now,
        )
        ConsentRecord.objects.filter(pk=consent.pk).update(given_at=request.created_at)
        if subscriber.treatment_date is not None:
            consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.TREATMENT_DATE_GIVEN, source="signup_page",
                           text=wording.TREATMENT_DATE_GIVEN, confirmed=True)
        # Applied: the choices are no longer needed, and other open sign-ups' links stop working.
        SignupRequest.objects.filter(subscriber_id=subscriber.pk).delete()
    subscriber.consents.filter(confirmed_at__isnull=True).update(confirmed_at=now)
    consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.CONFIRM, source=source, text=wording.CONFIRM,
                   confirmed=True)
    logger.info("subscriber confirmed subscriber=%s", subscriber.pk)
    return subscriber


# What a sign-up chooses, shown on the confirm page and changeable there before it applies.
CONFIRM_CHOICES = ("first_name", "stage", "language", "time_zone", "treatment_date")


def _choices_of(record) -> dict:
    return {name: getattr(record, name) for name in CONFIRM_CHOICES}


def confirm_choices(*, subscriber: Subscriber, request_id: int | None) -> dict:
    """The choices a confirmation link would apply: its open sign-up's, else (a link made before
    sign-up requests) what we hold."""
    request = None
    if request_id is not None:
        request = SignupRequest.objects.filter(pk=request_id, subscriber_id=subscriber.pk,
                                               state=SignupRequest.State.CONFIRM).first()
    return _choices_of(request or subscriber)


@transaction.atomic
def subscriber_new_links_send(*, subscriber_id: int, enqueue, notify) -> Subscriber:
    """"Send me new links": every preference, pause and view-online link sent so far stops working,
    every carer hand-off ends (the carer's links die with it; the subscriber is told through
    `notify`, nurture.tasks.enqueue_carer_notice), and a new preference link is emailed.
    (Unsubscribe links keep working: they can only stop emails, and must for 60 days and more.)
    The page that asked is itself revoked, so it can ask once: no mailbox throttle, the hourly
    ceiling still applies. `enqueue(subscriber_id, mailbox_counted)`: the view passes
    nurture.tasks.enqueue_new_links."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    subscriber.link_version += 1
    subscriber.save(update_fields=["link_version"])
    carer_handoffs_end(subscriber_id=subscriber.pk, by="new_links", source="preferences_page", notify=notify)
    transaction.on_commit(lambda: enqueue(subscriber.pk, True))
    logger.info("subscriber new links sent subscriber=%s", subscriber.pk)
    return subscriber


def subscriber_new_links_request(*, token: str, purposes: tuple[str, ...], enqueue) -> None:
    """"Email me a new link" from a link of one of `purposes`, current or expired. The worker
    decides whether anyone gets an email (services/signup.subscriber_new_links_email)."""
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
def subscriber_unsubscribe(*, subscriber_id: int, source: str = "unsubscribe_link") -> Subscriber:
    """Leave at once: nothing more is planned, and queued deliveries are not sent (send re-checks status)."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status != Subscriber.Status.UNSUBSCRIBED:
        subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.unsubscribed_at = timezone.now()
        subscriber.next_send_at = None
        subscriber.paused_until = None
        subscriber.save(update_fields=["status", "unsubscribed_at", "next_send_at", "paused_until"])
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.UNSUBSCRIBE, source=source,
                       text=wording.UNSUBSCRIBE)
        logger.info("subscriber unsubscribed subscriber=%s", subscriber.pk)
    return subscriber




def _withdraw_queued(subscriber: Subscriber) -> int | None:
    """Take back deliveries planned but not yet handed to a worker (queued, or waiting out a retry),
    so a pause or a series change does not let an old plan go out. Returns the earliest withdrawn
    step position, to put the subscriber back on it. A delivery already being sent goes."""
    queued = Delivery.objects.filter(subscriber_id=subscriber.pk, status=Delivery.Status.QUEUED)
    positions = list(queued.values_list("step__position", flat=True))
    queued.delete()
    return min(positions) if positions else None


def _move_to_series(subscriber: Subscriber, *, stage: str, language: str, source: str = "preferences_page") -> bool:
    """Start of the series for (stage, language). History (Delivery rows) stays, and the planner
    passes over any step whose articles they already had, so nothing is repeated. Returns whether
    the series changed. The caller holds the row lock and saves. Records each change."""
    if (stage, language) == (subscriber.stage, subscriber.language) and subscriber.series_id is not None:
        return False
    _withdraw_queued(subscriber)  # the old series' next email must not follow them
    stage_changed, language_changed = stage != subscriber.stage, language != subscriber.language
    if stage_changed and stage != Stage.RECENTLY_DIAGNOSED and subscriber.treatment_date is not None:
        # Kept only while it is used: the date plans the "recently diagnosed" series.
        subscriber.treatment_date = None
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.TREATMENT_DATE_REMOVED, source=source,
                       text=wording.TREATMENT_DATE_REMOVED)
    subscriber.stage, subscriber.language = stage, language
    if stage_changed:
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.STAGE_CHANGE, source=source,
                       text=wording.STAGE_CHANGE)
    if language_changed:  # worded in the new language: the one they chose to read
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.LANGUAGE_CHANGE, source=source,
                       text=wording.LANGUAGE_CHANGE)
    subscriber.series = series_for(stage=stage, language=language)
    subscriber.next_step_position = 0
    if subscriber.status == Subscriber.Status.ACTIVE:
        # Due at once; the planner still applies the gap since their last email, their cadence
        # and their daytime window before anything goes.
        subscriber.next_send_at = timezone.now()
    logger.info("subscriber moved series subscriber=%s", subscriber.pk)
    return True


@transaction.atomic
def subscriber_change_stage(*, subscriber_id: int, stage: str, language: str | None = None,
                            source: str = "admin") -> Subscriber:
    """Staff (admin) and the preference centre move a subscriber through this one path."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if _move_to_series(subscriber, stage=stage, language=language or subscriber.language, source=source):
        subscriber.save(update_fields=["stage", "language", "series", "next_step_position", "next_send_at",
                                       "treatment_date"])
    return subscriber


@transaction.atomic
def subscriber_update_preferences(
    *, subscriber_id: int, first_name: str, stage: str, language: str, cadence: str, source: str = "preferences_page"
) -> Subscriber:
    """Save the preference centre. A new stage or language moves them to the start of that series;
    their history stays, and the planner never repeats an article they already had."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    cadence_changed = cadence != subscriber.cadence
    name_changed = first_name != subscriber.first_name
    subscriber.first_name, subscriber.cadence = first_name, cadence
    moved = _move_to_series(subscriber, stage=stage, language=language, source=source)
    if name_changed:
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.NAME_CHANGE, source=source,
                       text=wording.NAME_CHANGE)
    if cadence_changed:
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.CADENCE_CHANGE, source=source,
                       text=wording.CADENCE_CHANGE)
    if (cadence_changed and not moved and subscriber.status == Subscriber.Status.ACTIVE
            and subscriber.next_send_at is not None):
        # Re-planned with the new cadence at once (the planner defers it if it is too soon).
        subscriber.next_send_at = min(subscriber.next_send_at, timezone.now())
    subscriber.save()
    return subscriber


@transaction.atomic
def subscriber_set_treatment_date(
    *, subscriber_id: int, treatment_date: dt.date | None, source: str = "preferences_page"
) -> Subscriber:
    """Give, change or remove the date treatment is planned to start (recently diagnosed only).
    A bad date raises InputError and changes nothing. An active subscriber is re-planned at once:
    the planner front-loads the "before treatment" steps (services.planning)."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if treatment_date is not None and subscriber.stage != Stage.RECENTLY_DIAGNOSED:
        raise InputError("treatment_date", _("A treatment date can only be given while recently diagnosed."))
    problem = treatment_date_problem(treatment_date)
    if problem:
        raise InputError("treatment_date", problem)
    if treatment_date == subscriber.treatment_date:
        return subscriber
    subscriber.treatment_date = treatment_date
    if treatment_date is None:
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.TREATMENT_DATE_REMOVED, source=source,
                       text=wording.TREATMENT_DATE_REMOVED)
    else:
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.TREATMENT_DATE_GIVEN, source=source,
                       text=wording.TREATMENT_DATE_GIVEN)
    if subscriber.status == Subscriber.Status.ACTIVE:
        subscriber.next_send_at = timezone.now()  # the planner still applies the gap and the daytime window
    subscriber.save(update_fields=["treatment_date", "next_send_at"])
    logger.info("treatment date %s subscriber=%s", "removed" if treatment_date is None else "set", subscriber.pk)
    return subscriber


@transaction.atomic
def subscriber_set_delivery_preferences(
    *, subscriber_id: int, quiet_days: list[int], time_of_day: str, plain_text: bool, larger_text: bool,
    source: str = "preferences_page",
) -> Subscriber:
    """Days with no email, a part of the organisation's window, plain text or larger text. The planner
    honours the days and hours in their time zone (nurture.rules); an active subscriber is re-planned
    at once. Bad input raises InputError and changes nothing."""
    if len(set(quiet_days)) >= 7 or any(not 0 <= d <= 6 for d in quiet_days):
        raise InputError("quiet_days", _("Leave at least one day free for our emails, or pause them instead."))
    window = (settings.NURTURE_SEND_WINDOW_START_HOUR, settings.NURTURE_SEND_WINDOW_END_HOUR)
    if time_of_day and time_of_day not in rules.offered_day_parts(start_hour=window[0], end_hour=window[1]):
        raise InputError("time_of_day", _("Please choose one of the options shown."))
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    chosen = {"quiet_days": ",".join(str(d) for d in sorted(set(quiet_days))), "time_of_day": time_of_day,
              "plain_text": plain_text, "larger_text": larger_text}
    if all(getattr(subscriber, field) == value for field, value in chosen.items()):
        return subscriber
    for field, value in chosen.items():
        setattr(subscriber, field, value)
    if subscriber.status == Subscriber.Status.ACTIVE and subscriber.next_send_at is not None:
        subscriber.next_send_at = min(subscriber.next_send_at, timezone.now())  # the planner applies the new hours
    subscriber.save(update_fields=[*chosen, "next_send_at"])
    consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.DELIVERY_PREFERENCES, source=source,
                   text=wording.DELIVERY_PREFERENCES)
    logger.info("delivery preferences changed subscriber=%s", subscriber.pk)
    return subscriber


def pause_end(*, weeks: int, now: dt.datetime) -> dt.datetime:
    """A week is 7 NURTURE_DAY_SECONDS days (real days in production; short ones in demos and tests)."""
    return now + timedelta(seconds=weeks * 7 * settings.NURTURE_DAY_SECONDS)


@transaction.atomic
def subscriber_pause(*, subscriber_id: int, weeks: int | None = None, source: str = "preferences_page") -> Subscriber:
    """Pause keeps their place (next_step_position); nothing is planned while paused. With `weeks`
    (one of PAUSE_WEEKS) the series resumes by itself afterwards (subscribers_resume_due); without,
    it waits for them. Pausing again while paused sets the new end. Never an unsubscribe."""
    if weeks is not None and weeks not in PAUSE_WEEKS:
        raise InputError("weeks", _("Choose one of the pause lengths offered."))
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status not in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        return subscriber
    if subscriber.status == Subscriber.Status.ACTIVE:
        subscriber.status = Subscriber.Status.PAUSED
        withdrawn_position = _withdraw_queued(subscriber)
        if withdrawn_position is not None:  # that email waits for the resume instead of being lost
            subscriber.next_step_position = min(subscriber.next_step_position, withdrawn_position)
            subscriber.next_send_at = timezone.now()  # due again as soon as they resume
    subscriber.paused_until = pause_end(weeks=weeks, now=timezone.now()) if weeks else None
    subscriber.save(update_fields=["status", "next_step_position", "next_send_at", "paused_until"])
    consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.PAUSE, source=source,
                   text=lambda: wording.pause(weeks))
    logger.info("subscriber paused subscriber=%s", subscriber.pk)
    return subscriber


@transaction.atomic
def subscriber_resume(*, subscriber_id: int, source: str = "preferences_page") -> Subscriber:
    """Back where they were: the same next step. Due now if it was due while paused; the planner
    still keeps the gap since their last email and their daytime window. Their first email after
    opens with a short "welcome back" line."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    if subscriber.status == Subscriber.Status.PAUSED:
        subscriber.status = Subscriber.Status.ACTIVE
        if subscriber.next_send_at is None or subscriber.next_send_at < timezone.now():
            subscriber.next_send_at = timezone.now()
        subscriber.paused_until = None
        subscriber.welcome_back_due = True
        subscriber.save(update_fields=["status", "next_send_at", "paused_until", "welcome_back_due"])
        automatic = source == "automatic"
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.RESUME, source=source,
                       text=wording.RESUME_AUTOMATIC if automatic else wording.RESUME)
        logger.info("subscriber resumed subscriber=%s", subscriber.pk)
    return subscriber


def subscribers_resume_due(*, now: dt.datetime | None = None, limit: int = 10_000) -> int:
    """Resume every pause whose end has come (run before each planning pass). Each in its own
    transaction, through subscriber_resume; a pause ended early by the person is already gone."""
    now = now or timezone.now()
    ids = list(
        Subscriber.objects.filter(status=Subscriber.Status.PAUSED, paused_until__lte=now)
        .order_by("paused_until").values_list("pk", flat=True)[:limit]
    )
    for subscriber_id in ids:
        subscriber_resume(subscriber_id=subscriber_id, source="automatic")
    return len(ids)
