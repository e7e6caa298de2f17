"""The suppression list: addresses we must never write to again.

One way in for every cause: the provider refusing a recipient at send time (services/sending.py),
a hard bounce, complaint or provider-side unsubscribe arriving by webhook (services/webhooks.py),
and a person asking us to delete their data (services/retention.py). Sending and the confirmation
email check the list (selectors.is_suppressed), and a suppressed subscriber is never planned.
"""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from nurture import selectors
from nurture.models import Subscriber, Suppression

logger = logging.getLogger(__name__)


@transaction.atomic
def address_suppress(*, email: str, reason: str) -> bool:
    """Put `email` on the suppression list (idempotent, case-insensitive) and mark a subscriber
    with that address suppressed, so the planner stops planning them and queued deliveries are
    skipped at send time. Returns whether a new suppression row was made. `reason` is staff-facing
    and must never name a stage or diagnosis."""
    email = email.strip()
    if not email:
        return False
    created = False
    if not selectors.is_suppressed(email=email):
        try:
            with transaction.atomic():
                Suppression.objects.create(email=email, reason=reason[:200])
            created = True
        except IntegrityError:  # suppressed at the same moment by a webhook or another worker
            pass
    # A reported bereavement keeps its own status (it is final, and counted apart in the results).
    final = [Subscriber.Status.SUPPRESSED, Subscriber.Status.DECEASED]
    marked = selectors.with_address(Subscriber.objects.all(), email).exclude(status__in=final).update(
        status=Subscriber.Status.SUPPRESSED, next_send_at=None
    )
    if created or marked:
        logger.info("address suppressed new_row=%s subscribers_marked=%d", created, marked)
    return created
