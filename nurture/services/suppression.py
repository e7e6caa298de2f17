"""The suppression list: addresses we must never write to again.

One way in for every cause: the provider refusing a recipient at send time (nurture/sending/),
a hard bounce, complaint or provider-side unsubscribe arriving by webhook (services/webhooks.py),
and a person asking us to delete their data (services/retention.py). Sending and the confirmation
email check the list (is_suppressed), and a suppressed subscriber is never planned.
"""
from __future__ import annotations

import logging
import re

from django.db import IntegrityError, transaction

from nurture import wording
from nurture.addresses import SAME_PROVIDER, mailbox_of
from nurture.models import ConsentRecord, Subscriber, Suppression
from nurture.selectors.subscribers import is_suppressed, with_address
from nurture.services.consent import consent_record

logger = logging.getLogger(__name__)

# Standings a suppression never overwrites: already suppressed, or a reported bereavement (final,
# and counted apart in the results).
FINAL = (Subscriber.Status.SUPPRESSED, Subscriber.Status.DECEASED)


@transaction.atomic
def address_suppress(*, email: str, reason: str, source: str = "suppression") -> bool:
    """Put the mailbox `email` reaches on the suppression list (idempotent, every spelling of it:
    nurture.addresses.mailbox_of) and mark the subscribers who use it suppressed, each with a
    consent record saying why (`source`: "bounce", "complaint", "provider_unsubscribe",
    "provider_refused", "erasure", "admin"), so the planner stops planning them and queued
    deliveries are skipped at send time. Returns whether a new suppression row was made. `reason`
    is staff-facing and must never name a stage or diagnosis."""
    email = email.strip()
    if not email:
        return False
    mailbox = mailbox_of(email)
    created = not is_suppressed(email=email) and _row_add(email, reason)
    marked = 0
    candidates = _subscribers_of(mailbox) if created else with_address(Subscriber.objects.all(), email)
    for subscriber in candidates.exclude(status__in=FINAL).select_for_update():
        if mailbox_of(subscriber.email) != mailbox:
            continue
        Subscriber.objects.filter(pk=subscriber.pk).update(status=Subscriber.Status.SUPPRESSED, next_send_at=None)
        if not with_address(Suppression.objects.all(), subscriber.email).exists():
            _row_add(subscriber.email, reason)  # a row of their own spelling: retention finds it by their address
        consent_record(subscriber=subscriber, kind=ConsentRecord.Kind.SUPPRESSED, source=source[:40],
                       text=wording.SUPPRESSED)
        marked += 1
    if created or marked:
        logger.info("address suppressed new_row=%s subscribers_marked=%d", created, marked)
    return created


def _row_add(email: str, reason: str) -> bool:
    try:
        with transaction.atomic():
            Suppression.objects.create(email=email, reason=reason[:200])
        return True
    except IntegrityError:  # suppressed at the same moment by a webhook or another worker
        return False


def _subscribers_of(mailbox: str):
    """Subscribers whose address may reach `mailbox` under any spelling (dots, a +tag, quotes,
    case): a scan of the table, made only when a new suppression row is (rare)."""
    local, _at, domain = mailbox.rpartition("@")
    pairs = [(domain, domain), *[(alias, to) for alias, to in SAME_PROVIDER.items()]]
    domains = [d for d, same in pairs if same == domain]
    spelled = "".join(re.escape(char) + r'[."\\]*' for char in local)
    pattern = r'^["\\.]*' + spelled + r'(\+[^@]*)?"?@(' + "|".join(re.escape(d) for d in domains) + r")\.?$"
    return Subscriber.objects.filter(email__iregex=pattern)
