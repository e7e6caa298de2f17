"""The page a locked-out sign-in gets (django-axes' AXES_LOCKOUT_CALLABLE): 429, how long until the
next try, and a Retry-After header. The lockout lasts AXES_COOLOFF_TIME after the latest failure
for this username and client address (refused attempts do not extend it)."""
from __future__ import annotations

import math

from axes.helpers import get_client_ip_address, get_client_username, get_cool_off
from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from nurture.selectors.staff import staff_sign_in_last_failed_at


def lockout_response(request, original_response=None, credentials=None):
    now = timezone.now()
    cool_off = get_cool_off(request)
    username = get_client_username(request, credentials) or ""
    address = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    latest = staff_sign_in_last_failed_at(username=username, address=address)
    retry_at = (latest or now) + cool_off
    seconds = max(1, math.ceil((retry_at - now).total_seconds()))
    response = render(
        request,
        "admin/lockout.html",
        {
            "title": "Too many failed sign-ins",
            "site_header": "Nurture staff",
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cool_off_minutes": math.ceil(cool_off.total_seconds() / 60),
            "retry_minutes": math.ceil(seconds / 60),
            "retry_at": retry_at,
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
