"""The audit trail: who looked at or changed one person's data, when, and which subscriber or delivery.

Ids only. The detail names the page or operation ("subscriber page", "stage change"), never an
address, a name or a stage: `audit_record` refuses a detail that looks like one, so a careless
call site fails in its tests instead of writing health data into the trail.

Append-only: AuditEntry refuses updates and deletes through the ORM, and on PostgreSQL a trigger
(made by migration 0001_schema) refuses them in the database too, except inside `audit_purge_expired`,
the daily retention purge (NURTURE_AUDIT_RETENTION_DAYS, default two years).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from content.models import Stage
from nurture import dialect
from nurture.models import AuditEntry, Subscriber

# The PostgreSQL trigger lets a DELETE through only while this transaction-local setting is on.
PURGE_SETTING = "nurture.audit_purge"
BATCH_SIZE = 1000
MAX_BATCHES = 200

_FORBIDDEN_WORDS = {value.replace("_", " ") for value in Stage.values} | {str(label).lower() for label in Stage.labels}


def _checked_detail(detail: str) -> str:
    text = (detail or "").strip()
    lowered = text.lower().replace("_", " ")
    if "@" in text or any(word in lowered for word in _FORBIDDEN_WORDS):
        raise ValueError("An audit detail names the page or operation only: no address, name or stage.")
    if len(text) > 200:
        raise ValueError("An audit detail is at most 200 characters.")
    return text


def _user_fields(user) -> dict:
    if user is None or not getattr(user, "is_authenticated", False):
        return {"user": None, "username": ""}
    return {"user": user, "username": user.get_username()}


def audit_record(*, user, action: str, subscriber_id: int | None = None, delivery_id: int | None = None,
                 suppression_id: int | None = None, article_id: int | None = None, detail: str = "") -> AuditEntry:
    """One entry: `user` did `action` (view, change, export, erase) to one subscriber, delivery
    and/or suppression-list row, or approved (approve) one article's text."""
    if action not in AuditEntry.Action.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    if subscriber_id is None and delivery_id is None and suppression_id is None and article_id is None:
        raise ValueError("An audit entry names a subscriber, a delivery, a suppression or an article.")
    return AuditEntry.objects.create(
        **_user_fields(user), action=action, subscriber_id=subscriber_id, delivery_id=delivery_id,
        suppression_id=suppression_id, article_id=article_id, detail=_checked_detail(detail),
    )


def audit_record_operation(*, user, action: str, detail: str) -> AuditEntry:
    """One entry for an operation on the service as a whole, naming no subscriber or delivery
    (e.g. resuming series sending after the complaint brake)."""
    if action not in AuditEntry.Action.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    if not (detail or "").strip():
        raise ValueError("An entry for the whole service says which operation it was.")
    return AuditEntry.objects.create(**_user_fields(user), action=action, detail=_checked_detail(detail))


def audit_record_many(*, user, action: str, subscriber_ids: Iterable[int], detail: str = "") -> int:
    """One entry per subscriber, in one INSERT (a list page or a bulk action)."""
    if action not in AuditEntry.Action.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    text = _checked_detail(detail)
    who = _user_fields(user)
    entries = [AuditEntry(**who, action=action, subscriber_id=pk, detail=text) for pk in dict.fromkeys(subscriber_ids)]
    AuditEntry.objects.bulk_create(entries)
    return len(entries)


def audit_record_suppressions(*, user, suppressions: list[tuple[int, str]], detail: str) -> int:
    """One "view" entry per suppression-list row shown ((id, address) pairs), in two queries: the
    address is never written; the row's id is, and the id of the subscriber with that address, if any."""
    text = _checked_detail(detail)
    who = _user_fields(user)
    addresses = {email.strip().lower() for _pk, email in suppressions}
    owners = Subscriber.objects.alias(low=Lower("email")).filter(low__in=addresses).values_list("email", "pk")
    owner_of = {email.lower(): pk for email, pk in owners}
    entries = [
        AuditEntry(**who, action=AuditEntry.Action.VIEW, suppression_id=pk,
                   subscriber_id=owner_of.get(email.strip().lower()),
                   detail=text)
        for pk, email in suppressions
    ]
    AuditEntry.objects.bulk_create(entries)
    return len(entries)


def audit_purge_expired(*, now: datetime | None = None, batch_size: int = BATCH_SIZE,
                        max_batches: int = MAX_BATCHES) -> int:
    """Delete entries older than NURTURE_AUDIT_RETENTION_DAYS, in bounded batches. The only delete."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.NURTURE_AUDIT_RETENTION_DAYS)
    deleted = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(AuditEntry.objects.filter(at__lt=cutoff).order_by("pk").values_list("pk",
                                                                                           flat=True)[:batch_size])
            if not ids:
                break
            dialect.set_transaction_flag(PURGE_SETTING)  # the append-only trigger lets this purge through
            batch = AuditEntry.objects.filter(pk__in=ids)
            deleted += batch._raw_delete(batch.db)
    return deleted
