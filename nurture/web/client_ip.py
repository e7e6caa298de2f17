"""The client's address, for rate limits and the staff sign-in lockout (AXES_CLIENT_IP_CALLABLE).

REMOTE_ADDR, unless NURTURE_TRUSTED_PROXY_HEADER names the header a trusted reverse proxy sets (e.g.
X-Forwarded-For): then the last address in it, the one that proxy saw (earlier entries come from the
client and can be forged). Without the setting such headers are ignored, so a client cannot pick an
address to dodge a limit."""
from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request) -> str:
    header = getattr(settings, "NURTURE_TRUSTED_PROXY_HEADER", "") or ""
    if header:
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        candidates = [part for part in value.split(",") if part.strip()]
        if candidates and (address := _valid(candidates[-1])):
            return address
    return _valid(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"
