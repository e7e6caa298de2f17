"""The complaint brake: series sending pauses itself for everyone when its emails draw too many
complaints or hard bounces, before the mailbox providers (Gmail and Yahoo's bulk-sender rules: keep
complaints under 0.3%) start putting everything we send, confirmations included, in spam.

The rule (docs/scheduler.md, "The complaint brake"): over the last day (from the later of 24 hours
ago and the last resume), once at least NURTURE_BRAKE_MIN_EMAILS series emails were delivered,
complaints / delivered above NURTURE_BRAKE_COMPLAINT_RATE or hard bounces / delivered above
NURTURE_BRAKE_HARD_BOUNCE_RATE trips it. Checked on every complaint or bounce the provider's
webhook stores. Tripped: series sends leave their deliveries queued (service emails go on), staff
with the overview permission are emailed, and it stays so until a staff member resumes it in the
admin (recorded in the audit trail). Figures only, never an address or a stage.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.conf import settings
from django.utils import timezone

from nurture import providers
from nurture.models import AuditEntry, SendingBrake
from nurture.selectors.deliveries import (
    SeriesMailHealth,
    sending_brake_engaged,
    sending_brake_last_resumed_at,
    series_mail_health,
)
from nurture.selectors.staff import staff_addresses_with_permission
from nurture.services.audit import audit_record_operation

logger = logging.getLogger(__name__)

WINDOW = timedelta(days=1)
ALERT_PERMISSION = ("nurture", "view_overview")


def brake_window_start(*, now: datetime) -> datetime:
    """A day back, but never before the last resume: what tripped the brake once does not trip it again."""
    resumed_at = sending_brake_last_resumed_at()
    return max(now - WINDOW, resumed_at) if resumed_at else now - WINDOW


def _over_the_limit(health: SeriesMailHealth) -> str:
    """Why the brake trips for these figures, or "" if it does not."""
    if health.emails < settings.NURTURE_BRAKE_MIN_EMAILS:
        return ""
    if health.complaint_rate > settings.NURTURE_BRAKE_COMPLAINT_RATE:
        return (f"complaint rate {health.complaint_rate:.2%} over {health.emails} series emails in a day "
                f"(limit {settings.NURTURE_BRAKE_COMPLAINT_RATE:.2%})")
    if health.hard_bounce_rate > settings.NURTURE_BRAKE_HARD_BOUNCE_RATE:
        return (f"hard-bounce rate {health.hard_bounce_rate:.2%} over {health.emails} series emails in a day "
                f"(limit {settings.NURTURE_BRAKE_HARD_BOUNCE_RATE:.2%})")
    return ""


def sending_brake_check(*, now: datetime | None = None) -> SendingBrake | None:
    """Trip the brake if the figures say so. Returns the engaged brake, if any."""
    engaged = sending_brake_engaged()
    if engaged is not None:
        return engaged
    now = now or timezone.now()
    health = series_mail_health(since=brake_window_start(now=now))
    reason = _over_the_limit(health)
    if not reason:
        return None
    try:
        with transaction.atomic():
            brake = SendingBrake.objects.create(
                reason=reason, emails=health.emails, complaints=health.complaints, hard_bounces=health.hard_bounces)
    except IntegrityError:  # another webhook tripped it at the same moment
        return sending_brake_engaged()
    logger.warning("series sending paused by the complaint brake: %s", reason)
    transaction.on_commit(lambda: _alert_staff(brake))
    return brake


def _alert_staff(brake: SendingBrake) -> None:
    app_label, codename = ALERT_PERMISSION
    addresses = staff_addresses_with_permission(app_label=app_label, codename=codename)
    if not addresses:
        logger.error("complaint brake #%s: no staff address to alert", brake.pk)
        return
    text = (
        f"Series sending has paused itself: {brake.reason}.\n\n"
        "Service emails (confirmations, new links, carers) still go out. Queued series emails wait.\n"
        "Look at the provider's complaint and bounce reports, then resume series sending in the admin "
        "(Sending brakes) when the cause is dealt with.\n"
    )
    message = EmailMultiAlternatives(subject="Series sending paused: complaint brake", body=text, bcc=addresses)
    providers.message_stream_set(message, stream=providers.TRANSACTIONAL)
    try:
        message.send()
    except Exception:  # the brake holds either way; the overview and /metrics show it
        logger.exception("complaint brake #%s: alerting staff failed", brake.pk)


def sending_brake_resume(*, brake_id: int, user) -> bool:
    """A staff member lifts the brake; recorded in the audit trail. False if it was not engaged."""
    with transaction.atomic():
        changed = SendingBrake.objects.filter(pk=brake_id, engaged=True).update(
            engaged=False, resumed_at=timezone.now(), resumed_by=user)
        if changed:
            audit_record_operation(user=user, action=AuditEntry.Action.CHANGE,
                                   detail=f"series sending resumed (brake #{brake_id})")
    if changed:
        logger.warning("series sending resumed by staff (brake #%s)", brake_id)
    return bool(changed)
