"""System checks: a bad setting stops start-up with a message naming the variable."""
from __future__ import annotations

from django.conf import settings
from django.core import checks

from config.env import CONFIG_ERRORS

PLACEHOLDER_MARK = "not set]"
DEMO_MARK = "(demo organisation)"


@checks.register()
def environment_values(app_configs=None, **kwargs):
    errors = []
    for index, (name, message) in enumerate(CONFIG_ERRORS):
        errors.append(checks.Error(message, hint=f"Fix or unset the environment variable {name}.", obj=name, id="nurture.E001"))
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
    if settings.SECRET_KEY == settings.INSECURE_DEV_SECRET_KEY and not settings.DEBUG:
        warnings.append(
            checks.Warning(
                "DJANGO_SECRET_KEY is not set; a development key is in use.",
                hint="Set DJANGO_SECRET_KEY to a long random value in production.",
                obj="DJANGO_SECRET_KEY",
                id="nurture.W001",
            )
        )
    if not settings.DEBUG and not (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET"):
        warnings.append(
            checks.Warning(
                "ANYMAIL_WEBHOOK_SECRET is not set: provider webhooks are off (404), so bounces and "
                "complaints reported by the provider do not suppress addresses.",
                hint="Set ANYMAIL_WEBHOOK_SECRET='user:password' and point the provider at /anymail/<provider>/tracking/.",
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
