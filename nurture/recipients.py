"""Reads: who gets a copy of a subscriber's series emails. Every address gets its own copy (its own
Delivery, built for it): the subscriber's own, and the copy of the carer they handed their emails
to once the hand-off is in force (services/carers.py) - as well as theirs, or instead of it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nurture.models import CarerHandoff, Delivery
from nurture.selectors import suppressed_among


def open_carer_handoff(*, subscriber_id: int) -> CarerHandoff | None:
    """The hand-off in play (waiting for a confirmation, or in force), if any: at most one."""
    return CarerHandoff.objects.filter(
        subscriber_id=subscriber_id, status__in=[CarerHandoff.Status.PENDING, CarerHandoff.Status.ACTIVE]
    ).first()


@dataclass(frozen=True, slots=True)
class CarerCopy:
    """A hand-off in force, as the planner needs it: whose copy to add, and whether the
    subscriber's own copy goes too."""

    handoff_id: int
    instead: bool


def carers_in_force(*, subscriber_ids: list[int]) -> dict[int, CarerCopy]:
    """subscriber id -> the carer copy their next email gets, for a whole planning batch: one
    query, two when someone has a carer. A carer address that has since bounced or complained is
    left out (the subscriber's own copy goes instead)."""
    rows = list(
        CarerHandoff.objects.filter(subscriber_id__in=subscriber_ids, status=CarerHandoff.Status.ACTIVE)
        .values_list("subscriber_id", "pk", "mode", "carer_email")
    )
    suppressed = suppressed_among(emails=[row[3] for row in rows]) if rows else set()
    return {
        subscriber_id: CarerCopy(handoff_id=pk, instead=mode == CarerHandoff.Mode.INSTEAD)
        for subscriber_id, pk, mode, email in rows
        if email.strip().lower() not in suppressed
    }


def carer_copy_sent_to(*, email: str, since: datetime) -> Delivery | None:
    """The latest carer's copy sent to `email` since `since`, if any: how an event from a provider
    that sends no message id is matched to a carer (services/webhooks.match_event)."""
    return (
        Delivery.objects.select_related("subscriber", "carer_handoff")
        .filter(carer_handoff__carer_email__iexact=email.strip(), sent_at__gte=since)
        .order_by("-sent_at").first()
    )
