"""Settings read from the environment, through one getter each.

A bad value never raises here: start-up must reach Django's system checks, which report it
with its variable name (see config/checks.py). So each getter records the problem in
CONFIG_ERRORS and falls back to the default.
"""
from __future__ import annotations

import os
import re

import dj_database_url

# (variable name, message) pairs, turned into system-check errors by config.checks.
CONFIG_ERRORS: list[tuple[str, str]] = []

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    CONFIG_ERRORS.append((name, f"{name} must be true or false (1/0, yes/no), not {raw!r}."))
    return default


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        CONFIG_ERRORS.append((name, f"{name} must be a whole number, not {raw!r}."))
        return default
    if minimum is not None and value < minimum:
        CONFIG_ERRORS.append((name, f"{name} must be at least {minimum}, not {value}."))
        return default
    if maximum is not None and value > maximum:
        CONFIG_ERRORS.append((name, f"{name} must be at most {maximum}, not {value}."))
        return default
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        CONFIG_ERRORS.append((name, f"{name} must be a number, not {raw!r}."))
        return default
    if value < minimum:
        CONFIG_ERRORS.append((name, f"{name} must be at least {minimum}, not {value}."))
        return default
    return value


def env_database(name: str, default_url: str) -> dict:
    raw = os.environ.get(name) or default_url
    try:
        return dj_database_url.parse(raw, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    except Exception as exc:  # the library raises several types for a malformed URL
        CONFIG_ERRORS.append((name, f"{name} is not a usable database URL: {exc}"))
        return dj_database_url.parse(default_url)


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    if raw.split("://", 1)[0] not in schemes or "://" not in raw:
        CONFIG_ERRORS.append((name,
                              f"{name} must start with one of {', '.join(s + '://' for s in schemes)}; got {raw!r}."))
        return default
    return raw.rstrip("/") if name == "SITE_URL" else raw


def env_choice(name: str, default: str, *, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        CONFIG_ERRORS.append((name, f"{name} must be one of {', '.join(choices)}, not {raw!r}."))
        return default
    return value


def env_header(name: str) -> str:
    """An HTTP header name such as X-Forwarded-Proto, as Django's request.META key
    (HTTP_X_FORWARDED_PROTO); empty when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    if not all(part.isalnum() for part in raw.split("-")):
        CONFIG_ERRORS.append((name, f"{name} must be an HTTP header name such as X-Forwarded-Proto, not {raw!r}."))
        return ""
    return "HTTP_" + raw.upper().replace("-", "_")


_RATE = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)?([smhd])$")


def env_rate(name: str, default: str) -> str:
    """A django-ratelimit rate such as "20/h" (20 per hour) or "5/10m" (5 per 10 minutes)."""
    raw = (os.environ.get(name) or default).strip()
    if not _RATE.match(raw):
        CONFIG_ERRORS.append((name, f"{name} must be a rate like 20/h, 5/10m or 100/d, not {raw!r}."))
        return default
    return raw


def env_list(name: str) -> list[str]:
    """Comma-separated values, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_url_path(name: str, default: str) -> str:
    """A URL path prefix such as "admin/" or "staff/tools/": letters, digits, "-", "_", "." and inner
    "/", ending with "/", not starting with one."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if not re.fullmatch(r"(?:[A-Za-z0-9._-]+/)+", value) or any(part in {".", ".."} for part in value.split("/")):
        CONFIG_ERRORS.append((name,
            f"{name} must be a path such as 'admin/' (letters, digits, - _ ., ending with /), not {raw!r}."))
        return default
    return value
