""""Has anything changed?": a short check-in email at a set interval per stage (NURTURE_CHECKIN_WEEKS),
and when a stage's series runs out, with one button per situation. Each button opens a page (a mail
scanner changes nothing); its POST moves them to that stage's series through the existing
stage-change rule (history kept, no article repeated, a consent record with source "checkin").

Never to someone paused or not active, and never more often than their stage's interval. The
answer is sealed in the link's token: no stage appears in a URL."""
from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from content.models import Stage
from nurture.emails.messages import build_checkin_email
from nurture.models import Subscriber
from nurture.selectors.subscribers import is_suppressed, subscribers_checkin_due
from nurture.services import throttle
from nurture.services.subscribers import subscriber_change_stage

logger = logging.getLogger(__name__)

NOTHING_CHANGED = "same"
BATCH = 500


def checkin_send(*, subscriber_id: int, now: datetime | None = None) -> bool:
    """One check-in, if still owed (re-checked under the row lock), stamped in the same transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        subscriber = subscribers_checkin_due(now=now).select_for_update(of=("self",)).filter(pk=subscriber_id).first()
        if subscriber is None or is_suppressed(email=subscriber.email):
            return False
        message = build_checkin_email(subscriber, answers=[*Stage.values, NOTHING_CHANGED])
        throttle.wait_for_send_slot()
        message.send()
        Subscriber.objects.filter(pk=subscriber.pk).update(last_checkin_at=now)
    logger.info("check-in sent subscriber=%s", subscriber_id)
    return True


def checkins_send_due(*, now: datetime | None = None, limit: int = BATCH) -> int:
    now = now or timezone.now()
    ids = list(subscribers_checkin_due(now=now).values_list("pk", flat=True)[:limit])
    return sum(checkin_send(subscriber_id=pk, now=now) for pk in ids)


def checkin_answer(*, subscriber_id: int, answer: str) -> tuple[Subscriber, bool]:
    """Apply an answer from the check-in page. Returns (subscriber, moved). "Nothing has changed"
    and the stage they already have change nothing; only an active or paused person can move."""
    subscriber = Subscriber.objects.get(pk=subscriber_id)
    if answer not in Stage.values or answer == subscriber.stage:
        return subscriber, False
    if subscriber.status not in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        return subscriber, False
    moved = subscriber_change_stage(subscriber_id=subscriber.pk, stage=answer, source="checkin")
    return moved, True
