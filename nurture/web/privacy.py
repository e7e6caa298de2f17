"""The privacy notice: built from the settings and the staff roles, so what it says stays true."""
from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from nurture.selectors.staff import staff_roles_seeing_subscribers


@require_http_methods(["GET"])
def privacy_notice(request):
    return render(request, "nurture/privacy.html", {
        "roles": staff_roles_seeing_subscribers(),
        "pending_days": settings.NURTURE_PENDING_RETENTION_DAYS,
        "unsubscribed_days": settings.NURTURE_UNSUBSCRIBED_RETENTION_DAYS,
        "event_days": settings.NURTURE_EVENT_RETENTION_DAYS,
        "audit_days": settings.NURTURE_AUDIT_RETENTION_DAYS,
        "link_days": settings.NURTURE_LINK_MAX_AGE_DAYS,
    })
