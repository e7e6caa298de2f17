"""System checks: a bad setting stops start-up with a message naming the variable."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core import checks

from config.env import CONFIG_ERRORS

PLACEHOLDER_MARK = "not set]"
DEMO_MARK = "(demo organisation)"


@checks.register()
def environment_values(app_configs=None, **kwargs):
    errors = []
    for index, (name, message) in enumerate(CONFIG_ERRORS):
        errors.append(checks.Error(message, hint=f"Fix or unset the environment variable {name}.", obj=name,
                                   id="nurture.E001"))
    if settings.NURTURE_SEND_WINDOW_START_HOUR >= settings.NURTURE_SEND_WINDOW_END_HOUR:
        errors.append(
            checks.Error(
                "NURTURE_SEND_WINDOW_START_HOUR must be earlier than NURTURE_SEND_WINDOW_END_HOUR.",
                obj="NURTURE_SEND_WINDOW_START_HOUR",
                id="nurture.E002",
            )
        )
    visibility = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("visibility_timeout")
    if visibility and settings.NURTURE_RETRY_MAX_SECONDS >= visibility:
        errors.append(
            checks.Error(
                "NURTURE_RETRY_MAX_SECONDS must be below NURTURE_BROKER_VISIBILITY_TIMEOUT: a retry waiting "
                "longer than the broker's visibility timeout is delivered twice.",
                obj="NURTURE_RETRY_MAX_SECONDS",
                id="nurture.E010",
            )
        )
    secret = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET")
    if secret and (not isinstance(secret, str) or ":" not in secret.strip(":")):
        errors.append(
            checks.Error(
                "ANYMAIL_WEBHOOK_SECRET must be 'user:password' (the basic auth your provider sends with webhooks).",
                hint="Set it to two random strings joined by a colon, and put the same in the provider's webhook URL.",
                obj="ANYMAIL_WEBHOOK_SECRET",
                id="nurture.E020",
            )
        )
    return errors


@checks.register(checks.Tags.security, deploy=False)
def production_placeholders(app_configs=None, **kwargs):
    warnings = []
    if not settings.DEBUG and not (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET"):
        warnings.append(
            checks.Warning(
                "ANYMAIL_WEBHOOK_SECRET is not set: provider webhooks are off (404), so bounces and "
                "complaints reported by the provider do not suppress addresses.",
                hint=(
                    "Set ANYMAIL_WEBHOOK_SECRET='user:password' and point the provider at "
                    "/anymail/<provider>/tracking/."
                ),
                obj="ANYMAIL_WEBHOOK_SECRET",
                id="nurture.W020",
            )
        )
    if not settings.DEBUG and settings.EMAIL_BACKEND == "nurture.mail.OutboxEmailBackend":
        warnings.append(
            checks.Warning(
                "EMAIL_BACKEND is not set: emails are written to files under NURTURE_OUTBOX_DIR, not sent.",
                hint="Set EMAIL_BACKEND (SMTP or an anymail backend) and its settings for production.",
                obj="EMAIL_BACKEND",
                id="nurture.W003",
            )
        )
    if not settings.DEBUG:
        for name in ("NURTURE_ORG_NAME", "NURTURE_ORG_ADDRESS", "NURTURE_ORG_HELPLINE"):
            value = getattr(settings, name)
            if PLACEHOLDER_MARK in value or DEMO_MARK in value:
                warnings.append(
                    checks.Warning(
                        f"{name} still holds a placeholder; it is printed in every email.",
                        hint=f"Set the environment variable {name}.",
                        obj=name,
                        id="nurture.W002",
                    )
                )
    return warnings


# --- the secret key (docs/security.md, "Public surface") -----------------------------------------
MIN_SECRET_KEY_LENGTH = 50
# Values that were ever written down: the development key, compose's old placeholder.
KNOWN_PUBLIC_KEYS = {"dev-only-insecure-key-set-DJANGO_SECRET_KEY", "change-me-in-production"}
_REPO_SKIP_DIRS = {".git", ".venv", "venv", "var", "node_modules", "__pycache__", ".pytest_cache", "staticfiles"}
_REPO_TEXT_SUFFIXES = {
    ".py", ".md", ".txt", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".json", ".html", ".env", ".example", ".sh", ".po",
    "",
}


@lru_cache(maxsize=8)
def _appears_in_repository(value: str) -> str | None:
    """The first file of this checkout whose text contains `value` (a key copied from the docs,
    the tests or compose is public), or None."""
    needle = value.encode("utf-8")
    root = Path(settings.BASE_DIR)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir():
                if entry.name not in _REPO_SKIP_DIRS and not entry.is_symlink():
                    stack.append(entry)
            elif entry.suffix in _REPO_TEXT_SUFFIXES or entry.name in ("Dockerfile", "Makefile"):
                try:
                    if entry.stat().st_size <= 2_000_000 and needle in entry.read_bytes():
                        return str(entry.relative_to(root))
                except OSError:
                    continue
    return None


def secret_key_problem(value: str) -> str | None:
    """Why `value` must not be used as a production key, or None."""
    if not value or value in KNOWN_PUBLIC_KEYS or value == settings.INSECURE_DEV_SECRET_KEY:
        return "is missing or is a public development key"
    if len(value) < MIN_SECRET_KEY_LENGTH:
        return f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    if len(set(value)) < 5:
        return "has fewer than 5 different characters"
    found = _appears_in_repository(value)
    if found:
        return f"appears in the repository ({found}), so it is public"
    return None


@checks.register(checks.Tags.security)
def secret_key(app_configs=None, **kwargs):
    """With DEBUG off, start-up refuses a key anyone could know: links in emails are sealed with it."""
    if settings.DEBUG:
        return []
    errors = []
    problem = secret_key_problem(settings.SECRET_KEY)
    if problem:
        errors.append(
            checks.Error(
                f"DJANGO_SECRET_KEY {problem}.",
                hint="Set DJANGO_SECRET_KEY to a new random value of 50 or more characters, e.g. "
                "`python -c 'from django.core.management.utils import get_random_secret_key as k; print(k())'`.",
                obj="DJANGO_SECRET_KEY",
                id="nurture.E030",
            )
        )
    for index, fallback in enumerate(getattr(settings, "SECRET_KEY_FALLBACKS", [])):
        problem = secret_key_problem(fallback)
        if problem:
            errors.append(
                checks.Error(
                    f"DJANGO_SECRET_KEY_FALLBACKS entry {index + 1} {problem}.",
                    hint="Only keep earlier production keys there, and drop them once their links have expired.",
                    obj="DJANGO_SECRET_KEY_FALLBACKS",
                    id="nurture.E031",
                )
            )
    return errors


@checks.register(checks.Tags.caches)
def shared_cache(app_configs=None, **kwargs):
    """Rate limits and per-address throttles count in the cache: it must be shared by all processes."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if settings.DEBUG or backend.endswith("RedisCache"):
        return []
    return [
        checks.Warning(
            "The cache is in-process memory: the sign-up rate limit and the per-address throttle count "
            "separately in each process.",
            hint="Use Redis: set CELERY_BROKER_URL=redis://... (the cache follows it) or CACHE_URL=redis://...",
            obj="CACHE_URL",
            id="nurture.W031",
        )
    ]


@checks.register(checks.Tags.security)
def trusted_proxy(app_configs=None, **kwargs):
    """Behind a proxy (an https SITE_URL, or DJANGO_SECURE_PROXY_SSL_HEADER set) every connection
    comes from the proxy's address: without the trusted client-address header, all clients share
    one bucket, so the sign-up and token-page limits become site-wide and five bad passwords lock a
    username out for everyone."""
    behind_proxy = settings.SITE_URL.startswith("https://") or bool(settings.SECURE_PROXY_SSL_HEADER)
    if settings.DEBUG or not behind_proxy or settings.NURTURE_TRUSTED_PROXY_HEADER:
        return []
    return [
        checks.Warning(
            "The site looks to be behind a proxy (https SITE_URL or DJANGO_SECURE_PROXY_SSL_HEADER) but "
            "NURTURE_TRUSTED_PROXY_HEADER is not set: every client gets the proxy's address, so rate limits "
            "and the sign-in lockout apply to everyone at once.",
            hint="Set NURTURE_TRUSTED_PROXY_HEADER to the header your proxy overwrites with the client's "
            "address, e.g. X-Forwarded-For (docs/operations.md).",
            obj="NURTURE_TRUSTED_PROXY_HEADER",
            id="nurture.W032",
        )
    ]


# Settings renamed for what they are: the former name is still read (config/settings.py) while the
# new one is unset, with this warning.
RENAMED_ENVIRONMENT_VARIABLES = {"NURTURE_CONFIRMATIONS_PER_HOUR": "NURTURE_SERVICE_EMAILS_PER_HOUR"}


@checks.register()
def renamed_settings(app_configs=None, **kwargs):
    return [
        checks.Warning(
            f"{old} is the former name of {new}; it is still read while {new} is unset.",
            hint=f"Rename the environment variable {old} to {new} (README, \"Configuration\").",
            obj=old,
            id="nurture.W040",
        )
        for old, new in RENAMED_ENVIRONMENT_VARIABLES.items()
        if os.environ.get(old, "").strip()
    ]


# The first migration of each app: a database that records migrations of the app but not this one was
# migrated by the chains these replaced (the releases before the squash).
SQUASHED_FIRST = {"content": "0001_articles", "nurture": "0001_schema"}


@checks.register(checks.Tags.database)
def migrated_before_the_squash(app_configs=None, databases=None, **kwargs):
    """`migrate` (which runs the database checks) would try to create tables such a database has:
    stop it with the one-time step instead."""
    from django.db import DatabaseError, connections
    from django.db.migrations.recorder import MigrationRecorder

    errors = []
    for alias in databases or []:
        try:
            recorder = MigrationRecorder(connections[alias])
            applied = set(recorder.applied_migrations()) if recorder.has_table() else set()
        except DatabaseError:
            continue  # no database to look at: other checks and commands say so
        for app, first in SQUASHED_FIRST.items():
            if any(a == app for a, _name in applied) and (app, first) not in applied:
                errors.append(checks.Error(
                    f"Database {alias!r} was migrated by {app}'s migrations from before they were squashed "
                    f"into {first}.",
                    hint=f"Bring it to the end of that chain with the last release before the squash, "
                         f"then run `manage.py migrate {app} {first} --fake --skip-checks` once "
                         f"(docs/operations.md, \"Upgrading\").",
                    id="nurture.E050",
                ))
    return errors
