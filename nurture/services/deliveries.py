"""A delivery row's state changes during a send, each one writer: claim (queued -> sending) with the
re-check that it may still go, settle (-> skipped / failed), and mark sent.

The single send and the batch send (services/sending.py) and the reconciler (services/reconcile.py)
all go through these, so "claimed", "sent" and "skipped" mean one thing wherever they happen.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.utils import timezone

from content.models import Article
from nurture import selectors
from nurture.models import Delivery, Subscriber

NOT_CLAIMED = "not-claimed"


def delivery_claim(*, delivery_id: int) -> datetime | None:
    """queued -> sending in one UPDATE, so two workers never take the same row. Returns the claim
    stamp (sending_started_at) that later writes check, or None if the row was not queued."""
    stamp = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, sending_started_at=stamp, provider_call_started_at=None
    )
    return stamp if claimed else None


def claimed_row(delivery_id: int, stamp: datetime) -> QuerySet[Delivery]:
    """The row, only while our claim holds (the reconciler may have taken one stuck too long)."""
    return Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENDING, sending_started_at=stamp)


def delivery_settle(*, delivery_id: int, stamp: datetime, status: str, reason: str) -> str:
    """sending -> skipped or failed (reason kept for staff), if our claim still holds. Returns `status`."""
    now = timezone.now()
    claimed_row(delivery_id, stamp).update(
        status=status, failure_reason=reason, failed_at=now if status == Delivery.Status.FAILED else None
    )
    return status


def _may_still_go(delivery: Delivery) -> tuple[str, list[Article]]:
    """Checked again just before sending, not only at planning: they may have left, paused, moved
    to another series or bounced since. Returns (reason to skip, "" if none) and the articles to
    send: only those planned for this delivery (never one they already had), still published."""
    subscriber = delivery.subscriber
    if subscriber.status != Subscriber.Status.ACTIVE:
        return f"subscriber is {subscriber.status}", []
    if delivery.step.series_id != subscriber.series_id:
        return "subscriber moved to another series", []
    if selectors.is_suppressed(email=subscriber.email):
        return "address is suppressed", []
    articles = selectors.delivery_articles(delivery=delivery)
    if not articles:
        return "no published article left in this step", []
    return "", articles


@dataclass
class ClaimedDelivery:
    delivery: Delivery  # loaded with its subscriber and step__series
    stamp: datetime  # the claim's sending_started_at
    articles: list[Article]  # what it carries


def delivery_claim_and_check(*, delivery_id: int) -> tuple[ClaimedDelivery | None, str]:
    """Claim the row and re-check it may go: (the claimed delivery, "") when it goes on to the
    provider, else (None, what became of it): NOT_CLAIMED (sent, being sent or settled elsewhere)
    or skipped, with the reason written on the row."""
    stamp = delivery_claim(delivery_id=delivery_id)
    if stamp is None:
        return None, NOT_CLAIMED
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery_id)
    reason, articles = _may_still_go(delivery)
    if reason:
        return None, delivery_settle(delivery_id=delivery_id, stamp=stamp, status=Delivery.Status.SKIPPED, reason=reason)
    return ClaimedDelivery(delivery, stamp, articles), ""


def deliveries_mark_sent(
    *, provider_message_ids: Mapping[int, str], sent_at: datetime, article_versions: dict | None = None,
    among: QuerySet[Delivery] | None = None,
) -> int:
    """The provider has them: status sent at `sent_at`, with each delivery's provider message id
    ({delivery id: id}), no failure reason, and `article_versions` (what was rendered) when given.
    Each subscriber's last_sent_at moves forward to `sent_at`, never back. `among`: only rows still
    in it are written (the reconciler: still stuck). Two UPDATEs, whatever the number of rows.
    Returns the number of deliveries marked."""
    ids = list(provider_message_ids)
    if not ids:
        return 0
    rows = (Delivery.objects.all() if among is None else among).filter(pk__in=ids)
    if len(ids) == 1:
        provider_id = Value(provider_message_ids[ids[0]])
    else:
        provider_id = Case(*(When(pk=pk, then=Value(mid)) for pk, mid in provider_message_ids.items()), output_field=CharField())
    values = {"status": Delivery.Status.SENT, "sent_at": sent_at, "provider_message_id": provider_id, "failure_reason": ""}
    if article_versions is not None:
        values["article_versions"] = article_versions
    marked = rows.update(**values)
    if marked:
        Subscriber.objects.filter(
            deliveries__pk__in=ids, deliveries__status=Delivery.Status.SENT, deliveries__sent_at=sent_at
        ).filter(Q(last_sent_at__isnull=True) | Q(last_sent_at__lt=sent_at)).update(last_sent_at=sent_at)
    return marked
