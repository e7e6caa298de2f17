"""The re-check: a claimed batch is checked again just before sending, not only at planning."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from nurture.dialect import one_of
from nurture.selectors.deliveries import deliveries_articles
from nurture.selectors.subscribers import suppressed_among
from nurture.models import CarerHandoff, Delivery, Step, Subscriber
from nurture.sending.ledger import Claimed


# Columns the re-check and the email never read (times of other states, bookkeeping): not loaded,
# so a batch of 500 reads about a third fewer values and parses a few timestamps per row, not 20.
# tests/nurture/sending/test_recheck_columns.py checks that building the emails reads none of them.
NOT_FOR_SENDING = (
    "failure_reason", "queued_at", "next_attempt_at", "sent_at", "failed_at", "provider_message_id",
    "provider_call_started_at",
    "subscriber__created_at", "subscriber__confirmed_at", "subscriber__unsubscribed_at",
    "subscriber__last_checkin_at", "subscriber__next_send_at", "subscriber__last_sent_at",
    "carer_handoff__requested_at", "carer_handoff__confirmed_at", "carer_handoff__carer_confirmed_at",
    "carer_handoff__subscriber_confirmed_at", "carer_handoff__stopped_at",
)


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


def _steps_by_id(deliveries: list[Delivery]) -> dict[int, Step]:
    """The batch's steps with their series, each read once: a batch of 500 rows is a few steps,
    so this makes a few model instances where joining them to every row made 1,000."""
    if not deliveries:
        return {}
    return Step.objects.select_related("series").in_bulk({d.step_id for d in deliveries})


def deliveries_recheck(*, delivery_ids: list[int], stamp: datetime) -> tuple[list[Claimed], dict[str, list[int]]]:
    """Checked again just before sending, not only at planning: they may have left, paused, moved
    to another series or bounced since, and a carer's hand-off may have ended. Four reads for the
    whole batch (rows with subscriber and carer hand-off, their steps with series, suppressions,
    articles), read-only. Returns the rows to send, in id order, and {reason: ids} of rows to skip."""
    rows = list(
        Delivery.objects.select_related("subscriber", "carer_handoff")
        .filter(one_of("pk", delivery_ids), status=Delivery.Status.SENDING, sending_started_at=stamp)
        .defer(*NOT_FOR_SENDING)
        .order_by("pk")
    )
    steps, deliveries, skip = _steps_by_id(rows), [], defaultdict(list)
    for delivery in rows:
        if delivery.step_id in steps:
            delivery.step = steps[delivery.step_id]  # shared by the batch's rows: read, never written
            deliveries.append(delivery)
        else:  # deleted between the two reads (its deliveries go with it)
            skip["the step was removed"].append(delivery.pk)
    suppressed = suppressed_among(emails=[d.to_address for d in deliveries])
    articles = deliveries_articles(deliveries=deliveries)
    keep = []
    for delivery in deliveries:
        reason = _skip_reason(delivery, suppressed, articles[delivery.pk])
        if reason:
            skip[reason].append(delivery.pk)
        else:
            # One address per message: the building asks the database nothing more.
            keep.append(Claimed(delivery, articles[delivery.pk], recipients=[delivery.to_address]))
    return keep, dict(skip)
