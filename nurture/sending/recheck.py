"""The re-check: a claimed batch is checked again just before sending, not only at planning."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from nurture.selectors.deliveries import deliveries_articles
from nurture.selectors.subscribers import suppressed_among
from nurture.models import CarerHandoff, Delivery, Subscriber
from nurture.sending.ledger import Claimed


def _skip_reason(delivery: Delivery, suppressed: set[str], articles: list) -> str:
    subscriber = delivery.subscriber
    if subscriber.status != Subscriber.Status.ACTIVE:
        return f"subscriber is {subscriber.status}"
    if delivery.step.series_id != subscriber.series_id:
        return "subscriber moved to another series"
    if delivery.for_carer and delivery.carer_handoff.status != CarerHandoff.Status.ACTIVE:
        return "carer hand-off ended"
    if delivery.to_address.strip().lower() in suppressed:
        return "address is suppressed"
    if not articles:
        return "no published article left in this step"
    return ""


def deliveries_recheck(*, delivery_ids: list[int], stamp: datetime) -> tuple[list[Claimed], dict[str, list[int]]]:
    """Checked again just before sending, not only at planning: they may have left, paused, moved
    to another series or bounced since, and a carer's hand-off may have ended. Four reads for the
    whole batch (rows with subscriber, step and carer hand-off, suppressions, articles), read-only.
    Returns the rows to send, in id order, and {reason: ids} of rows to skip."""
    deliveries = list(
        Delivery.objects.select_related("subscriber", "step__series", "carer_handoff")
        .filter(pk__in=delivery_ids, status=Delivery.Status.SENDING, sending_started_at=stamp)
        .order_by("pk")
    )
    suppressed = suppressed_among(emails=[d.to_address for d in deliveries])
    articles = deliveries_articles(deliveries=deliveries)
    keep, skip = [], defaultdict(list)
    for delivery in deliveries:
        reason = _skip_reason(delivery, suppressed, articles[delivery.pk])
        if reason:
            skip[reason].append(delivery.pk)
        else:
            # One address per message: the building asks the database nothing more.
            keep.append(Claimed(delivery, articles[delivery.pk], recipients=[delivery.to_address]))
    return keep, dict(skip)
