"""Sign-up from the public form, in two halves (docs/security.md, "Public surface").

1. The form (web): `signup_request_store` stores the sign-up as it arrived and enqueues
   `nurture.process_signup`. It never looks the address up, so a new and a known address cost the
   same work and the same time, and the answer is the same page.
2. The worker: `signup_request_process` decides what the sign-up means, then
   `signup_request_email` sends its one email under three ceilings:
   - per mailbox (nurture.addresses.mailbox_of: every spelling of one inbox is one key): one sign-up email per
     NURTURE_CONFIRM_RESEND_MINUTES and NURTURE_SIGNUP_EMAILS_PER_ADDRESS_PER_DAY a day; over it
     the sign-up is dropped;
   - NURTURE_SERVICE_EMAILS_PER_HOUR in all: over it the email waits (the task retries later);
   - the provider's sends-per-second ceiling, shared with the series emails.

What a sign-up means:
- a suppressed address: nothing is stored or sent (the request row goes);
- a new address: a pending subscriber with these choices, and a confirmation email;
- a pending or unsubscribed subscriber: the choices wait on the request; the confirmation email
  carries its id, and only confirming applies them (services/subscribers.subscriber_confirm);
- an active or paused subscriber: nothing changes; they get an "already subscribed" email with a
  new preference link.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from content.models import Stage
from nurture import metrics
from nurture.addresses import address_normalise, mailbox_of
from nurture.emails.messages import LINKS_ALREADY_SUBSCRIBED, LINKS_NEW, build_confirmation_email, build_links_email
from nurture.models import SignupRequest, Subscriber
from nurture.selectors.subscribers import is_suppressed, subscriber_by_email
from nurture.services import throttle

logger = logging.getLogger(__name__)

def _mailbox_key(email: str, window: str) -> str:
    digest = hashlib.sha256(mailbox_of(email).encode("utf-8")).hexdigest()[:32]
    return f"nurture:mailbox:{window}:{digest}"


def mailbox_take(*, email: str) -> bool:
    """Count one sign-up email to this mailbox; False when its throttle is full (then nothing is
    counted). Atomic on Redis (SET NX and INCR)."""
    recent_key = _mailbox_key(email, "recent")
    resend = settings.NURTURE_CONFIRM_RESEND_MINUTES * 60
    if resend and not cache.add(recent_key, 1, timeout=resend):
        return False
    day_key = _mailbox_key(email, "day")
    cache.add(day_key, 0, timeout=86400)
    try:
        sent_today = cache.incr(day_key)
    except ValueError:  # expired between add and incr
        cache.add(day_key, 1, timeout=86400)
        sent_today = 1
    if sent_today > settings.NURTURE_SIGNUP_EMAILS_PER_ADDRESS_PER_DAY:
        return False
    return True


@transaction.atomic
def signup_request_store(
    *, email: str, first_name: str, stage: str, language: str, time_zone: str, consent_text: str, enqueue,
    treatment_date=None,
) -> int:
    """The form's only write: the same for every address. The worker decides once committed
    (`enqueue(request_id)`: the view passes nurture.tasks.enqueue_signup). A treatment date (the form
    checked its range) is kept only for the recently diagnosed stage, and applies on confirmation."""
    request = SignupRequest.objects.create(
        email=address_normalise(email), first_name=first_name, stage=stage, language=language, time_zone=time_zone,
        consent_text=consent_text, treatment_date=treatment_date if stage == Stage.RECENTLY_DIAGNOSED else None,
    )
    transaction.on_commit(lambda: enqueue(request.pk))
    return request.pk


def _drop(request: SignupRequest, why: str) -> str:
    """Store nothing of a sign-up that leads nowhere: the row goes (with its choices)."""
    logger.info("sign-up request dropped request=%s why=%s", request.pk, why)
    request.delete()
    return SignupRequest.State.DROPPED


def _new_subscriber(request: SignupRequest) -> Subscriber | None:
    try:
        with transaction.atomic():
            return Subscriber.objects.create(
                email=request.email, first_name=request.first_name, stage=request.stage, language=request.language,
                time_zone=request.time_zone,
            )
    except IntegrityError:  # the same address arrived in a parallel request
        return None


def signup_request_process(*, request_id: int) -> str:
    """Decide what one stored sign-up means (see the module docstring); returns the request's
    new state. Runs once: a redelivered task finds the state already decided."""
    with transaction.atomic():
        request = SignupRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return SignupRequest.State.DROPPED
        if request.state != SignupRequest.State.RECEIVED:
            return request.state
        if is_suppressed(email=request.email):
            return _drop(request, "suppressed")
        if not mailbox_take(email=request.email):
            return _drop(request, "mailbox throttle")
        subscriber = subscriber_by_email(email=request.email)
        if subscriber is None:
            subscriber = _new_subscriber(request) or subscriber_by_email(email=request.email)
            logger.info("sign-up created subscriber=%s", subscriber.pk)
        if subscriber.status == Subscriber.Status.SUPPRESSED:
            return _drop(request, "suppressed subscriber")
        if subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
            state = SignupRequest.State.ALREADY
        else:
            state = SignupRequest.State.CONFIRM
        request.subscriber, request.state = subscriber, state
        request.save(update_fields=["subscriber", "state"])
    logger.info("sign-up request decided request=%s subscriber=%s state=%s", request.pk, subscriber.pk, state)
    return state


@dataclass(frozen=True)
class EmailOutcome:
    sent: bool
    retry_in: float = 0.0  # > 0: the hourly ceiling is full; try again after this many seconds


def signup_request_email(*, request_id: int) -> EmailOutcome:
    """Send the request's one email (confirmation or "already subscribed") if it is still due."""
    request = SignupRequest.objects.select_related("subscriber").filter(pk=request_id).first()
    if request is None or request.emailed_at is not None or request.subscriber is None:
        return EmailOutcome(sent=False)
    if request.state not in (SignupRequest.State.CONFIRM, SignupRequest.State.ALREADY):
        return EmailOutcome(sent=False)
    if is_suppressed(email=request.subscriber.email):
        return EmailOutcome(sent=False)
    wait = throttle.take_service_email_slot()
    if wait:
        logger.info("sign-up email waits for the hourly ceiling request=%s seconds=%.0f", request.pk, wait)
        return EmailOutcome(sent=False, retry_in=wait)
    if request.state == SignupRequest.State.CONFIRM:
        message = build_confirmation_email(request.subscriber, signup_request=request)
    else:
        message = build_links_email(request.subscriber, reason=LINKS_ALREADY_SUBSCRIBED)
    throttle.wait_for_send_slot()  # the provider's ceiling, shared with the series emails
    message.send()
    metrics.count_emails_sent(1, kind="confirmation")
    SignupRequest.objects.filter(pk=request.pk).update(emailed_at=timezone.now())
    if request.state == SignupRequest.State.ALREADY:
        request.delete()  # nothing waits on it: the choices are not kept
    logger.info("sign-up email sent request=%s", request.pk)
    return EmailOutcome(sent=True)


def subscriber_new_links_email(*, subscriber_id: int, mailbox_counted: bool = False) -> EmailOutcome:
    """"Email me a new link": a preference link to the address on file, under the same
    per-mailbox throttle and hourly ceiling as sign-up emails. Nothing for an unknown, erased,
    suppressed or unsubscribed subscriber. mailbox_counted: a retry after the hourly ceiling,
    already counted against the mailbox."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status not in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        return EmailOutcome(sent=False)
    if is_suppressed(email=subscriber.email):
        return EmailOutcome(sent=False)
    outcome = throttled_email_send(
        email=subscriber.email, mailbox_counted=mailbox_counted, kind="links",
        build=lambda: build_links_email(subscriber, reason=LINKS_NEW),
    )
    logger.info("new links subscriber=%s sent=%s", subscriber.pk, outcome.sent)
    return outcome


def throttled_email_send(
    *, email: str, mailbox_counted: bool, kind: str, build, take_slot=None,
) -> EmailOutcome:
    """A service email someone can ask for again and again (a new link, a carer's
    confirmation): one count against the mailbox (over its throttle: dropped), then the hourly
    ceiling (full: retry_in, it waits; `take_slot`: the sign-up emails' ceiling unless told), then
    the provider's ceiling; `build()` makes the message. mailbox_counted: a retry, already
    counted, or an email that must not be dropped (a notice to the subscriber)."""
    if not mailbox_counted and not mailbox_take(email=email):
        return EmailOutcome(sent=False)
    wait = (take_slot or throttle.take_service_email_slot)()
    if wait:
        return EmailOutcome(sent=False, retry_in=wait)
    message = build()
    throttle.wait_for_send_slot()  # the provider's ceiling, shared with the series emails
    message.send()
    metrics.count_emails_sent(1, kind=kind)
    return EmailOutcome(sent=True)
