"""Reads: who a subscriber's series emails go to. The subscriber, or the carer they handed their
emails to (instead of them, or as well), only once the carer confirmed from their own inbox."""
from __future__ import annotations

from nurture.models import CarerHandoff, Subscriber
from nurture.selectors import is_suppressed


def active_carer(*, subscriber_id: int) -> CarerHandoff | None:
    """The carer hand-off in force (confirmed by the carer, not stopped), if any."""
    return CarerHandoff.objects.filter(subscriber_id=subscriber_id, status=CarerHandoff.Status.ACTIVE).first()


def open_carer_handoff(*, subscriber_id: int) -> CarerHandoff | None:
    """The hand-off in play (waiting for the carer, or in force), if any: at most one."""
    return CarerHandoff.objects.filter(
        subscriber_id=subscriber_id, status__in=[CarerHandoff.Status.PENDING, CarerHandoff.Status.ACTIVE]
    ).first()


def delivery_recipients(*, subscriber: Subscriber) -> list[str]:
    """Where a series email goes: the subscriber, or the carer who confirmed (instead of them, or as
    well). A carer address that has since bounced or complained is left out."""
    handoff = active_carer(subscriber_id=subscriber.pk)
    if handoff is None or is_suppressed(email=handoff.carer_email):
        return [subscriber.email]
    if handoff.mode == CarerHandoff.Mode.INSTEAD:
        return [handoff.carer_email]
    return [subscriber.email, handoff.carer_email]


def subscribers_with_carer(*, subscriber_ids: list[int]) -> set[int]:
    """Which of these subscribers have a carer hand-off in force (one query)."""
    return set(
        CarerHandoff.objects.filter(subscriber_id__in=subscriber_ids, status=CarerHandoff.Status.ACTIVE)
        .values_list("subscriber_id", flat=True)
    )
