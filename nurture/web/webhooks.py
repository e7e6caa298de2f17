"""anymail's webhook URLs (/anymail/<provider>/tracking/), served only with a webhook secret.

anymail checks the HTTP basic auth given in ANYMAIL_WEBHOOK_SECRET, but with no secret set it
only warns and accepts anyone's posts, and a forged "bounce" would suppress any address. So
without a secret the URLs answer 404 (and `manage.py check` warns, nurture.W020). A payload
anymail cannot parse (not JSON, missing fields, an inbound message sent to a tracking URL)
answers 400 instead of a 500 the provider would keep retrying.

Only the configured provider's tracking and inbound URLs answer: the provider of the anymail
EMAIL_BACKEND (anymail.backends.<provider>.EmailBackend). Other providers' URLs answer 404, so nobody
can feed us events in another provider's format (docs/security.md). Inbound mail (replies) is
handled by services/replies.py, behind the same secret.
"""
from __future__ import annotations

import functools
import logging

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailConfigurationError, AnymailError, AnymailWebhookValidationFailure
from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern

logger = logging.getLogger(__name__)


def webhook_secret() -> str:
    return str((getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET") or "")


def configured_provider() -> str:
    """"postmark" for anymail.backends.postmark.EmailBackend; "" for a non-anymail backend."""
    parts = str(settings.EMAIL_BACKEND).split(".")
    return parts[2] if len(parts) == 4 and parts[:2] == ["anymail", "backends"] else ""


def _guarded(view, name: str):
    @functools.wraps(view)
    def guarded_view(request, *args, **kwargs):
        if not webhook_secret():
            return HttpResponse("Provider webhooks are off: ANYMAIL_WEBHOOK_SECRET is not set.", status=404,
                                content_type="text/plain")
        provider = configured_provider()
        if name not in (f"{provider}_tracking_webhook", f"{provider}_inbound_webhook"):
            return HttpResponse("Not the configured email provider's webhook URL.", status=404,
                                content_type="text/plain")
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            raise  # wrong credentials: Django answers 400 and logs it as a suspicious operation
        except AnymailConfigurationError as exc:  # e.g. the provider's inbound hook set to a tracking URL
            logger.error("webhook misconfigured at the provider path=%s: %s", request.path, exc)
            kind = "inbound messages" if name.endswith("_inbound_webhook") else "tracking events"
            return HttpResponseBadRequest(f"This URL takes {kind} only.", content_type="text/plain")
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, AnymailError) as exc:
            # JSONDecodeError is a ValueError; JSON nested thousands deep is a RecursionError. The
            # type only: the message may quote the payload.
            logger.warning("webhook payload refused path=%s error=%s", request.path, type(exc).__name__)
            return HttpResponseBadRequest("Unreadable webhook payload.", content_type="text/plain")

    return guarded_view


urlpatterns = [
    URLPattern(pattern.pattern, _guarded(pattern.callback, pattern.name), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
    # Tracking events, and inbound mail (replies to our emails, services/replies.py).
    if str(pattern.name).endswith(("_tracking_webhook", "_inbound_webhook"))
]
app_name = anymail_urls.app_name
