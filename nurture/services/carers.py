"""Someone else is helping: the carer hand-off.

Nothing goes to a carer before they confirm from their own inbox; "instead of me" also waits for
the subscriber's confirmation from theirs, so one leaked link cannot move anyone's emails. The
subscriber is told of every step in their own inbox (the request, with a link that cancels it; the
hand-off coming into force; its end, whoever ended it), each step is a consent record on the
subscriber, and "send me new links" ends every hand-off.

The form's answer to a request is the same whatever address it names: whether the carer is
emailed (not an address on the suppression list) is decided by the worker
(carer_confirmation_email_send), as for sign-ups.

`notify(handoff_id, event)` sends the subscriber's notice once committed (the views and the webhook
receiver pass nurture.tasks.enqueue_carer_notice); `enqueue(handoff_id)` the carer's confirmation.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from nurture import wording
from nurture.addresses import same_mailbox
from nurture.emails.messages import build_carer_confirmation_email, build_carer_notice_email
from nurture.models import CarerHandoff, ConsentRecord, Delivery, Subscriber
from nurture.selectors.subscribers import is_suppressed
from nurture.services import throttle
from nurture.services.consent import consent_record
from nurture.services.errors import InputError
from nurture.services.signup import EmailOutcome, throttled_email_send

logger = logging.getLogger(__name__)

# What the subscriber's notice (templates/email/carer_notice.*) says happened.
NOTICE_REQUESTED = "requested"  # a carer was named: cancel link, and for "instead" the confirm link
NOTICE_ACTIVE = "active"  # the hand-off is in force
NOTICE_STOPPED = "stopped"  # ended (by whom: handoff.stopped_by)
NOTICES = (NOTICE_REQUESTED, NOTICE_ACTIVE, NOTICE_STOPPED)

OPEN = (CarerHandoff.Status.PENDING, CarerHandoff.Status.ACTIVE)


class TooManyCarerRequests(Exception):
    """Over NURTURE_CARER_REQUESTS_PER_DAY for this subscriber. `retry_after`: seconds."""

    def __init__(self, retry_after: int):
        super().__init__("too many carer requests")
        self.retry_after = retry_after


def carer_address_problem(*, subscriber: Subscriber, carer_email: str):
    """None when the form may take the address; else the error to show. Only what the page holder
    already knows is checked here (their own address is on the page): whether the address can be
    emailed is the worker's decision, so the answer never tells the suppression list."""
    if same_mailbox(carer_email.strip(), subscriber.email):
        return _("This is your own address. Enter the address of the person helping you.")
    return None


def _requests_left_wait(subscriber: Subscriber, now) -> int:
    """0 when one more request fits the subscriber's daily cap, else seconds until one does."""
    since = now - timedelta(days=1)
    recent = list(
        CarerHandoff.objects.filter(subscriber=subscriber, requested_at__gt=since)
        .order_by("requested_at").values_list("requested_at", flat=True)
    )
    if len(recent) < settings.NURTURE_CARER_REQUESTS_PER_DAY:
        return 0
    return max(1, int((recent[0] + timedelta(days=1) - now).total_seconds()) + 1)


@transaction.atomic
def carer_request(
    *, subscriber_id: int, carer_email: str, mode: str, enqueue, notify, source: str = "preferences_page"
) -> CarerHandoff:
    """Ask a carer to receive the emails. Nothing goes to them until they confirm from their own
    inbox (carer_confirm), and for "instead of me" until the subscriber confirms too
    (carer_subscriber_confirm). A request replaces any earlier one. The subscriber is emailed at
    once. Bad input raises InputError (the mode first: no answer depends on the address named);
    more than NURTURE_CARER_REQUESTS_PER_DAY in a day raises TooManyCarerRequests."""
    if mode not in CarerHandoff.Mode.values:
        raise InputError("mode", _("Choose one of the options offered."))
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    problem = carer_address_problem(subscriber=subscriber, carer_email=carer_email)
    if problem:
        raise InputError("carer_email", problem)
    now = timezone.now()
    wait = _requests_left_wait(subscriber, now)
    if wait:
        raise TooManyCarerRequests(retry_after=wait)
    CarerHandoff.objects.filter(subscriber=subscriber, status__in=OPEN).update(
        status=CarerHandoff.Status.STOPPED, stopped_at=now, stopped_by="replaced"
    )
    handoff = CarerHandoff.objects.create(subscriber=subscriber, carer_email=carer_email.strip(), mode=mode)
    text = wording.CARER_REQUESTED_INSTEAD if mode == CarerHandoff.Mode.INSTEAD else wording.CARER_REQUESTED_AS_WELL
    consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.CARER_REQUESTED, source=source, text=text)
    transaction.on_commit(lambda: enqueue(handoff.pk))
    transaction.on_commit(lambda: notify(handoff.pk, NOTICE_REQUESTED))
    logger.info("carer hand-off requested subscriber=%s handoff=%s", subscriber.pk, handoff.pk)
    return handoff


def _activate_if_agreed(handoff: CarerHandoff, *, notify) -> None:
    """pending -> active once everyone who must agree has: the carer, and for "instead of me" the
    subscriber too."""
    agreed = handoff.carer_confirmed_at is not None and (
        handoff.mode == CarerHandoff.Mode.AS_WELL or handoff.subscriber_confirmed_at is not None
    )
    if handoff.status != CarerHandoff.Status.PENDING or not agreed:
        return
    handoff.status = CarerHandoff.Status.ACTIVE
    handoff.confirmed_at = timezone.now()
    handoff.save(update_fields=["status", "confirmed_at"])
    transaction.on_commit(lambda: notify(handoff.pk, NOTICE_ACTIVE))
    logger.info("carer hand-off active handoff=%s", handoff.pk)


def _agree(*, handoff_id: int, side: str, kind: str, text, source: str, notify) -> CarerHandoff:
    """One side's agreement (`side`: the timestamp field it sets), recorded once; twice changes nothing."""
    handoff = CarerHandoff.objects.select_for_update().select_related("subscriber").get(pk=handoff_id)
    if handoff.status == CarerHandoff.Status.PENDING and getattr(handoff, side) is None:
        setattr(handoff, side, timezone.now())
        handoff.save(update_fields=[side])
        consent_record(subscriber=handoff.subscriber, kind=kind, source=source, text=text, confirmed=True)
        logger.info("carer hand-off agreed handoff=%s side=%s", handoff.pk, side)
        _activate_if_agreed(handoff, notify=notify)
    return handoff


@transaction.atomic
def carer_confirm(*, handoff_id: int, notify, source: str = "carer_link") -> CarerHandoff:
    """The carer agrees, from the link in their own inbox."""
    return _agree(handoff_id=handoff_id, side="carer_confirmed_at", kind=ConsentRecord.Kind.CARER_CONFIRMED,
                  text=wording.CARER_CONFIRMED, source=source, notify=notify)


@transaction.atomic
def carer_subscriber_confirm(*, handoff_id: int, notify, source: str = "subscriber_link") -> CarerHandoff:
    """The subscriber confirms "instead of me", from the link in their own inbox (the request notice)."""
    return _agree(handoff_id=handoff_id, side="subscriber_confirmed_at", kind=ConsentRecord.Kind.CARER_REQUESTED,
                  text=wording.CARER_REQUESTED_INSTEAD, source=source, notify=notify)


@transaction.atomic
def carer_stop(*, handoff_id: int, by: str, source: str, notify) -> CarerHandoff:
    """Stop it (by: subscriber / carer / staff / new_links / bounce / complaint). Emails go back to
    the subscriber only, and the subscriber is told."""
    handoff = CarerHandoff.objects.select_for_update().select_related("subscriber").get(pk=handoff_id)
    if handoff.status != CarerHandoff.Status.STOPPED:
        handoff.status = CarerHandoff.Status.STOPPED
        handoff.stopped_at = timezone.now()
        handoff.stopped_by = by
        handoff.save(update_fields=["status", "stopped_at", "stopped_by"])
        consent_record(subscriber=handoff.subscriber, kind=ConsentRecord.Kind.CARER_STOPPED, source=source,
                       text=wording.CARER_STOPPED)
        if handoff.mode == CarerHandoff.Mode.INSTEAD:
            _queued_copies_back_to_the_subscriber(handoff)
        transaction.on_commit(lambda: notify(handoff.pk, NOTICE_STOPPED))
        logger.info("carer hand-off stopped handoff=%s by=%s", handoff.pk, by)
    return handoff


def _queued_copies_back_to_the_subscriber(handoff: CarerHandoff) -> int:
    """"Instead of me" ended: the carer's copies not yet claimed for sending become the subscriber's
    own (their send task, already enqueued, then sends them to the subscriber), so no step is lost.
    A step that has its own copy already is left to be skipped."""
    own_steps = Delivery.objects.filter(subscriber_id=handoff.subscriber_id,
                                        carer_handoff__isnull=True).values("step_id")
    return (
        Delivery.objects.filter(carer_handoff=handoff, status=Delivery.Status.QUEUED)
        .exclude(step_id__in=own_steps).update(carer_handoff=None)
    )


@transaction.atomic
def carer_handoffs_end(*, subscriber_id: int, by: str, source: str, notify) -> int:
    """Every hand-off in play for this subscriber ends ("send me new links"). Returns how many."""
    ids = list(CarerHandoff.objects.filter(subscriber_id=subscriber_id, status__in=OPEN).values_list("pk", flat=True))
    for handoff_id in ids:
        carer_stop(handoff_id=handoff_id, by=by, source=source, notify=notify)
    return len(ids)


def carer_address_failed(*, handoff_id: int, complaint: bool, notify, source: str = "provider_webhook") -> None:
    """The carer's copy hard-bounced, was reported as spam or was refused by the provider at send
    time (its address is suppressed by the caller): the hand-off ends, and the subscriber is told."""
    carer_stop(handoff_id=handoff_id, by="complaint" if complaint else "bounce", source=source, notify=notify)


# --- the carer's emails, decided and sent by the worker ------------------------------------------


def carer_confirmation_email_send(*, handoff_id: int, mailbox_counted: bool = False) -> EmailOutcome:
    """The carer's confirmation email, while the request still waits for the carer (not stopped,
    replaced or already agreed) and their address is not suppressed: decided here, in the worker,
    so the form answers the same whatever address it was given. Under the per-mailbox throttle
    and the carer emails' own hourly ceiling (NURTURE_CARER_EMAILS_PER_HOUR): nobody can fill a
    stranger's inbox by naming them as carer again and again, nor hold back sign-up confirmations.
    mailbox_counted: a retry, already counted against the mailbox."""
    handoff = CarerHandoff.objects.select_related("subscriber").filter(
        pk=handoff_id, status=CarerHandoff.Status.PENDING, carer_confirmed_at__isnull=True
    ).first()
    if handoff is None or is_suppressed(email=handoff.carer_email):
        return EmailOutcome(sent=False)
    outcome = throttled_email_send(
        email=handoff.carer_email, mailbox_counted=mailbox_counted, kind="carer_confirmation",
        build=lambda: build_carer_confirmation_email(handoff), take_slot=throttle.take_carer_email_slot,
    )
    logger.info("carer confirmation handoff=%s sent=%s", handoff.pk, outcome.sent)
    return outcome


def carer_notice_email_send(*, handoff_id: int, event: str) -> EmailOutcome:
    """The subscriber's notice of a step of their carer hand-off (services.carers.NOTICE_*), to
    their own address, unless it is suppressed or the subscriber erased. Never dropped by the
    mailbox throttle (the subscriber must be told; the daily cap on carer requests bounds it);
    under the carer emails' hourly ceiling."""
    handoff = CarerHandoff.objects.select_related("subscriber").filter(pk=handoff_id).first()
    if handoff is None or is_suppressed(email=handoff.subscriber.email):
        return EmailOutcome(sent=False)
    outcome = throttled_email_send(
        email=handoff.subscriber.email, mailbox_counted=True, kind="carer_notice",
        build=lambda: build_carer_notice_email(handoff, event=event), take_slot=throttle.take_carer_email_slot,
    )
    logger.info("carer notice handoff=%s event=%s sent=%s", handoff.pk, event, outcome.sent)
    return outcome
