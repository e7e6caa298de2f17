"""Reads: who a subscriber's series emails go to. The subscriber, or the carer they handed their
emails to (instead of them, or as well), only once the carer confirmed from their own inbox."""
from __future__ import annotations

from nurture.models import CarerHandoff, Subscriber
from nurture.selectors import suppressed_among


def active_carer(*, subscriber_id: int) -> CarerHandoff | None:
    """The carer hand-off in force (confirmed by the carer, not stopped), if any."""
    return CarerHandoff.objects.filter(subscriber_id=subscriber_id, status=CarerHandoff.Status.ACTIVE).first()


def open_carer_handoff(*, subscriber_id: int) -> CarerHandoff | None:
    """The hand-off in play (waiting for the carer, or in force), if any: at most one."""
    return CarerHandoff.objects.filter(
        subscriber_id=subscriber_id, status__in=[CarerHandoff.Status.PENDING, CarerHandoff.Status.ACTIVE]
    ).first()


def _addresses(subscriber: Subscriber, handoff: CarerHandoff | None, suppressed: set[str]) -> list[str]:
    if handoff is None or handoff.carer_email.strip().lower() in suppressed:
        return [subscriber.email]
    if handoff.mode == CarerHandoff.Mode.INSTEAD:
        return [handoff.carer_email]
    return [subscriber.email, handoff.carer_email]


def recipients_for(*, subscribers: list[Subscriber]) -> dict[int, list[str]]:
    """subscriber id -> where their series email goes: the subscriber, or the carer who confirmed
    (instead of them, or as well); a carer address that has since bounced or complained is left
    out. For a whole send batch: one query, two when someone has a carer."""
    handoffs = {
        h.subscriber_id: h
        for h in CarerHandoff.objects.filter(
            subscriber_id__in=[s.pk for s in subscribers], status=CarerHandoff.Status.ACTIVE
        )
    }
    suppressed = suppressed_among(emails=[h.carer_email for h in handoffs.values()]) if handoffs else set()
    return {s.pk: _addresses(s, handoffs.get(s.pk), suppressed) for s in subscribers}


def delivery_recipients(*, subscriber: Subscriber) -> list[str]:
    """recipients_for one subscriber."""
    return recipients_for(subscribers=[subscriber])[subscriber.pk]


def subscribers_with_carer(*, subscriber_ids: list[int]) -> set[int]:
    """Which of these subscribers have a carer hand-off in force (one query)."""
    return set(
        CarerHandoff.objects.filter(subscriber_id__in=subscriber_ids, status=CarerHandoff.Status.ACTIVE)
        .values_list("subscriber_id", flat=True)
    )
