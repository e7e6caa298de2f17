"""The client's address, for rate limits and lockouts: one function for every caller
(django-ratelimit through RATELIMIT_IP_META_KEY, django-axes through AXES_CLIENT_IP_CALLABLE).

A request header such as X-Forwarded-For is anyone's to write, so it is read only when the setting
NURTURE_TRUSTED_PROXY_HEADER names it, meaning our own proxy sets it. Then the LAST entry is used:
the address that proxy saw connecting (entries to its left came from the client and may be forged).
Otherwise the connection's address (REMOTE_ADDR).
"""
from __future__ import annotations

import ipaddress

from django.conf import settings

UNKNOWN = "0.0.0.0"  # no usable address: all such requests share one bucket


def _valid(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request) -> str:
    header = getattr(settings, "NURTURE_TRUSTED_PROXY_HEADER", "")
    if header:
        raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        entries = [entry for entry in str(raw).split(",") if entry.strip()]
        if entries:
            address = _valid(entries[-1])
            if address:
                return address
    return _valid(request.META.get("REMOTE_ADDR", "") or "") or UNKNOWN
