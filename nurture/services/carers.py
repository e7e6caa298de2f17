"""Someone else is helping: the carer hand-off. Nothing goes to a carer before they confirm from
their own inbox; either of them can stop it; each step is a consent record on the subscriber."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from nurture import selectors, tokens, wording
from nurture.addresses import same_mailbox
from nurture.models import CarerHandoff, ConsentRecord, Subscriber
from nurture.services.consent import consent_record
from nurture.services.subscribers import InputError

logger = logging.getLogger(__name__)


def carer_address_problem(*, subscriber: Subscriber, carer_email: str):
    """None when the address can take the hand-off; else the error to show."""
    address = carer_email.strip()
    if same_mailbox(address, subscriber.email):
        return _("This is your own address. Enter the address of the person helping you.")
    if selectors.is_suppressed(email=address):
        return _("We cannot send emails to this address. Please use another one.")
    return None


@transaction.atomic
def carer_request(
    *, subscriber_id: int, carer_email: str, mode: str, enqueue, source: str = "preferences_page"
) -> CarerHandoff:
    """Ask a carer to receive the emails. Nothing goes to them until they confirm from their own
    inbox (carer_confirm). A request replaces any earlier one. Bad input raises InputError.
    `enqueue(handoff_id)` sends the carer's confirmation once committed (nurture.tasks.enqueue_carer_confirmation)."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    problem = carer_address_problem(subscriber=subscriber, carer_email=carer_email)
    if problem:
        raise InputError("carer_email", problem)
    if mode not in CarerHandoff.Mode.values:
        raise InputError("mode", _("Choose one of the options offered."))
    now = timezone.now()
    CarerHandoff.objects.filter(
        subscriber=subscriber, status__in=[CarerHandoff.Status.PENDING, CarerHandoff.Status.ACTIVE]
    ).update(status=CarerHandoff.Status.STOPPED, stopped_at=now, stopped_by="replaced")
    handoff = CarerHandoff.objects.create(subscriber=subscriber, carer_email=carer_email.strip(), mode=mode)
    text = wording.CARER_REQUESTED_INSTEAD if mode == CarerHandoff.Mode.INSTEAD else wording.CARER_REQUESTED_AS_WELL
    consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.CARER_REQUESTED, source=source, text=text)
    transaction.on_commit(lambda: enqueue(handoff.pk))
    logger.info("carer hand-off requested subscriber=%s handoff=%s", subscriber.pk, handoff.pk)
    return handoff


@transaction.atomic
def carer_confirm(*, handoff_id: int, source: str = "carer_link") -> CarerHandoff:
    """The carer agrees, from the link in their own inbox: pending -> active. Twice changes nothing."""
    handoff = CarerHandoff.objects.select_for_update().select_related("subscriber").get(pk=handoff_id)
    if handoff.status == CarerHandoff.Status.PENDING:
        handoff.status = CarerHandoff.Status.ACTIVE
        handoff.confirmed_at = timezone.now()
        handoff.save(update_fields=["status", "confirmed_at"])
        consent_record(subscriber=handoff.subscriber, kind=ConsentRecord.Kind.CARER_CONFIRMED, source=source,
                       text=wording.CARER_CONFIRMED, confirmed=True)
        logger.info("carer hand-off confirmed handoff=%s", handoff.pk)
    return handoff


@transaction.atomic
def carer_stop(*, handoff_id: int, by: str, source: str) -> CarerHandoff:
    """Either of them stops it (by: subscriber / carer / staff). Emails go back to the subscriber only."""
    handoff = CarerHandoff.objects.select_for_update().select_related("subscriber").get(pk=handoff_id)
    if handoff.status != CarerHandoff.Status.STOPPED:
        handoff.status = CarerHandoff.Status.STOPPED
        handoff.stopped_at = timezone.now()
        handoff.stopped_by = by
        handoff.save(update_fields=["status", "stopped_at", "stopped_by"])
        consent_record(subscriber=handoff.subscriber, kind=ConsentRecord.Kind.CARER_STOPPED, source=source, text=wording.CARER_STOPPED)
        logger.info("carer hand-off stopped handoff=%s by=%s", handoff.pk, by)
    return handoff


def handoff_from_token(*, purpose: str, token: str) -> CarerHandoff:
    """The hand-off a carer's link names. Raises tokens.TokenError for a bad link, including one
    whose hand-off is gone or belongs to another subscriber."""
    subscriber_id, extra = tokens.read_token(purpose=purpose, token=token)
    if not extra.isdigit():
        raise tokens.TokenError()
    handoff = CarerHandoff.objects.select_related("subscriber").filter(pk=int(extra), subscriber_id=subscriber_id).first()
    if handoff is None:
        raise tokens.TokenError()
    return handoff
