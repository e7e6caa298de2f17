""""Tell us someone has died": the report, and the one bereavement-support email a carer may ask for.

A report is final for sending and happens once per person (the Bereavement row is unique per
subscriber). In one transaction: the person's status becomes "deceased"; every delivery not yet
handed to the provider is cancelled (queued ones, and ones a worker has claimed but not yet handed
over: the worker's hand-over stamp only holds while the row is still "sending", so it loses the
race to this update); a carer hand-off in play stops; the address goes on the suppression list, so
no future series or sign-up email reaches it; a consent record of kind "bereavement" says through
which page or by whom, and the audit trail has the report. No goodbye email. The results count a
bereavement apart from "left": unsubscribed_at is never set here (nurture/selectors/results.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from nurture import metrics, wording
from nurture.emails.messages import build_bereavement_support_email
from nurture.models import Bereavement, CarerHandoff, ConsentRecord, Subscriber
from nurture.selectors.subscribers import is_suppressed, open_carer_handoff
from nurture.sending import deliveries_cancel_unsent
from nurture.services import throttle
from nurture.services.audit import audit_record
from nurture.services.carers import carer_stop
from nurture.services.consent import consent_record
from nurture.services.suppression import address_suppress

logger = logging.getLogger(__name__)

CANCELLED_REASON = "cancelled: bereavement reported"
# Kept on the suppression list with the address only; the reason is neutral on purpose.
SUPPRESSION_REASON = "do not email again (care)"


@dataclass(frozen=True)
class BereavementOutcome:
    bereavement: Bereavement
    created: bool  # False: it had been reported before; nothing changed
    cancelled: int = 0  # deliveries cancelled


def support_offered() -> bool:
    """The organisation set its bereavement-support details (NURTURE_BEREAVEMENT_SUPPORT)."""
    return bool(settings.NURTURE_BEREAVEMENT_SUPPORT.strip())


def carer_may_ask_for_support(handoff: CarerHandoff | None) -> bool:
    """A carer who was helping (confirmed at some point) may ask for the one support email."""
    return bool(handoff is not None and handoff.confirmed_at is not None and support_offered())


def _cancel_unsent(subscriber_id: int) -> int:
    """Their deliveries not yet handed to the provider become skipped (the ledger's cancel)."""
    return deliveries_cancel_unsent(subscriber_id=subscriber_id, reason=CANCELLED_REASON)


@transaction.atomic
def bereavement_report(
    *, subscriber_id: int, source: str, user=None, carer_handoff_id: int | None = None,
    carer_wants_support: bool = False, enqueue_support=None,
) -> BereavementOutcome:
    """Report that the person has died (source: a Bereavement.Source). `user`: the staff member
    (admin), None from a public page. From the carer's page (`carer_handoff_id`), the carer may ask
    for one email with the organisation's bereavement-support details: `enqueue_support(id)` sends
    it once this commits (nurture.tasks.enqueue_bereavement_support). Reporting twice changes nothing."""
    if source not in Bereavement.Source.values:
        raise ValueError(f"Unknown bereavement source {source!r}.")
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber_id)
    existing = Bereavement.objects.filter(subscriber_id=subscriber.pk).first()
    if existing is not None:
        return BereavementOutcome(existing, created=False)
    handoff = None
    if carer_handoff_id is not None:
        handoff = CarerHandoff.objects.filter(pk=carer_handoff_id, subscriber_id=subscriber.pk).first()
    support_to = ""
    if carer_wants_support and carer_may_ask_for_support(handoff) and not is_suppressed(email=handoff.carer_email):
        support_to = handoff.carer_email
    try:
        with transaction.atomic():
            bereavement = Bereavement.objects.create(
                subscriber=subscriber, source=source, support_email_to=support_to,
                reported_by=user.get_username() if user is not None and user.is_authenticated else "",
            )
    except IntegrityError:  # reported at the same moment through another page
        return BereavementOutcome(Bereavement.objects.get(subscriber_id=subscriber.pk), created=False)
    cancelled = _cancel_unsent(subscriber.pk)
    open_handoff = open_carer_handoff(subscriber_id=subscriber.pk)
    if open_handoff is not None:
        # No notice: nothing more goes to the person who died (the carer's pages say it has ended).
        carer_stop(handoff_id=open_handoff.pk, by="bereavement", source=source, notify=lambda *_: None)
    address_suppress(email=subscriber.email, reason=SUPPRESSION_REASON)
    # After the suppression (which marks the row "suppressed"): this status says why.
    Subscriber.objects.filter(pk=subscriber.pk).update(
        status=Subscriber.Status.DECEASED, next_send_at=None, paused_until=None, welcome_back_due=False,
    )
    consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.BEREAVEMENT, source=source, text=wording.BEREAVEMENT)
    audit_record(user=user, action="change", subscriber_id=subscriber.pk, detail=f"bereavement reported ({source})")
    if support_to and enqueue_support is not None:
        transaction.on_commit(lambda: enqueue_support(bereavement.pk))
    logger.info("bereavement reported subscriber=%s cancelled=%d support_email=%s", subscriber.pk, cancelled,
                bool(support_to))
    return BereavementOutcome(bereavement, created=True, cancelled=cancelled)


def bereavement_support_email_send(*, bereavement_id: int) -> bool:
    """The one email with the organisation's bereavement-support details, to the carer who asked on
    the page. Once: the row is locked while it goes and stamped when it went; a redelivered task
    finds it stamped. Nothing if the carer's address has since been suppressed."""
    with transaction.atomic():
        bereavement = (
            Bereavement.objects.select_for_update().select_related("subscriber").filter(pk=bereavement_id).first()
        )
        if bereavement is None or not bereavement.support_email_to or bereavement.support_email_sent_at is not None:
            return False
        if is_suppressed(email=bereavement.support_email_to):
            return False
        message = build_bereavement_support_email(bereavement)
        throttle.wait_for_send_slot()  # the provider's ceiling, shared with the series emails
        message.send()
        Bereavement.objects.filter(pk=bereavement.pk).update(support_email_sent_at=timezone.now())
    metrics.count_emails_sent(1, kind="bereavement_support")
    logger.info("bereavement support email sent bereavement=%s", bereavement_id)
    return True
