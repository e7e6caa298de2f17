"""What differs per email provider, in one place: how a send error is classed, which backends have a
batch endpoint we use, and how each provider marks a bounce as temporary.

As django-anymail keeps one module per ESP over a base class, each provider here is one small class
over `Provider`; the base holds what is true for every backend (anymail normalises API errors, and
SMTP has its own exception types). Sending (services/sending.py) and provider webhooks
(services/webhooks.py) ask through the functions at the end and speak one vocabulary after that.
"""
from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings

# What a send error means for the delivery.
TRANSIENT = "transient"  # try again later
PERMANENT = "permanent"  # the provider said no to this message
REFUSED = "refused"  # the provider will not write to this address
UNKNOWN = "unknown"  # we cannot tell whether it went


DEFAULT_BATCH_RECIPIENTS = 1000


@dataclass(frozen=True)
class BatchEndpoint:
    merge_field_format: str  # the ESP's merge-field syntax, "{}" standing for the field's name
    # Whether each delivery keeps the id the send response gives its recipient (what the ESP's
    # webhooks report). If not, it keeps our Message-ID header, which the webhooks report instead.
    ids_per_recipient: bool
    # Text that makes the ESP see a merge field: content (body or subject) holding it goes one by one.
    syntax_marker: str = ""
    # Whether a value holding the marker could be read as syntax too (then it goes one by one as
    # well). SparkPost inserts values once and never reads them again; Mailgun does not say, so it
    # is assumed to.
    values_may_be_read: bool = True
    max_recipients: int = DEFAULT_BATCH_RECIPIENTS  # per call


class Provider:
    """The base: any backend (anymail's or Django's SMTP). Subclasses say what their ESP adds."""

    name = ""  # anymail's esp_name, lower case (webhooks name their provider by it)
    backend = ""  # the EMAIL_BACKEND path
    # A batch endpoint that fills per-recipient values into one body without a stored template.
    batch_endpoint: BatchEndpoint | None = None
    # Whether every event the provider's webhook sends names the message it is about (the id its
    # send response gave). If so, an event without one is about no message we sent: it is stored
    # and not acted on. Only for a provider we do not know is an event matched by its recipient.
    events_carry_message_id = False

    def classify_error(self, exc: BaseException) -> str:
        if isinstance(exc, AnymailRecipientsRefused) or isinstance(exc, smtplib.SMTPRecipientsRefused):
            return REFUSED
        if isinstance(exc, AnymailAPIError):
            status = getattr(exc, "status_code", None)
            if status is None:  # no HTTP answer: anymail wraps requests' timeout/connection errors
                if isinstance(exc, requests.ReadTimeout):
                    # The request went out and no answer came in time: the provider may have it.
                    return UNKNOWN
                # Connect timeouts, refused or dropped connections: retried (docs/scheduler.md).
                return TRANSIENT if isinstance(exc, (requests.ConnectionError, requests.Timeout)) else UNKNOWN
            return TRANSIENT if status == 429 or status >= 500 else PERMANENT
        if isinstance(exc, AnymailError):  # anymail's own checks (unsupported feature, bad address...)
            return PERMANENT
        if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, socket.timeout, TimeoutError)):
            return TRANSIENT
        if isinstance(exc, smtplib.SMTPResponseException):
            return TRANSIENT if 400 <= exc.smtp_code < 500 else PERMANENT
        return UNKNOWN

    def is_soft_bounce(self, esp_event) -> bool:
        """anymail files some temporary failures under "bounced"; they must not suppress an address
        that may work tomorrow. The base knows no provider's payload."""
        return False


class Mailgun(Provider):
    name = "mailgun"
    events_carry_message_id = True
    backend = "anymail.backends.mailgun.EmailBackend"
    # %recipient.KEY% from "recipient-variables"; one id for the whole call; at most 1000 recipients.
    batch_endpoint = BatchEndpoint(
        merge_field_format="%recipient.{}%", ids_per_recipient=False, syntax_marker="%recipient.", max_recipients=1000
    )

    def is_soft_bounce(self, esp_event) -> bool:
        return isinstance(esp_event, dict) and esp_event.get("severity") == "temporary"


class Postmark(Provider):
    name = "postmark"
    events_carry_message_id = True
    backend = "anymail.backends.postmark.EmailBackend"

    def is_soft_bounce(self, esp_event) -> bool:
        return isinstance(esp_event, dict) and esp_event.get("Type") == "SoftBounce"


class SparkPost(Provider):
    name = "sparkpost"
    events_carry_message_id = True
    backend = "anymail.backends.sparkpost.EmailBackend"
    # Handlebars {{{KEY}}} (triple braces: inserted as given; our values are escaped already) from
    # each recipient's substitution_data; values are never read as template text. Its webhooks
    # report the transmission id (the id anymail gives every recipient of the call) with the
    # recipient's metadata: each delivery keeps the transmission id, and the webhook matcher picks
    # the delivery by its metadata (services/webhooks.py).
    batch_endpoint = BatchEndpoint(
        merge_field_format="{{{{{{{}}}}}}}", ids_per_recipient=True, syntax_marker="{{", values_may_be_read=False,
        max_recipients=1000,
    )
    # Bounce classes that say the address itself is bad (Invalid Recipient, No RCPT); every other
    # class (soft, DNS, mailbox full, blocks, undetermined...) may clear up.
    HARD_BOUNCE_CLASSES = {"10", "30"}

    def is_soft_bounce(self, esp_event) -> bool:
        if not isinstance(esp_event, dict):
            return False
        event = next(iter((esp_event.get("msys") or {}).values()), None)
        if not isinstance(event, dict) or event.get("type") not in ("bounce", "out_of_band"):
            return False
        return str(event.get("bounce_class", "")) not in self.HARD_BOUNCE_CLASSES


class SendGrid(Provider):
    name = "sendgrid"
    events_carry_message_id = True
    backend = "anymail.backends.sendgrid.EmailBackend"

    def is_soft_bounce(self, esp_event) -> bool:
        return isinstance(esp_event, dict) and esp_event.get("type") == "blocked"


PROVIDERS: tuple[Provider, ...] = (Mailgun(), Postmark(), SparkPost(), SendGrid())
MAILGUN_BACKEND = Mailgun.backend
SPARKPOST_BACKEND = SparkPost.backend
# EMAIL_BACKEND -> its batch endpoint (a table, so a test can add a backend of its own).
BATCH_ENDPOINTS: dict[str, BatchEndpoint] = {p.backend: p.batch_endpoint for p in PROVIDERS if p.batch_endpoint}
_BASE = Provider()


def classify_send_error(exc: BaseException) -> str:
    """TRANSIENT, PERMANENT, REFUSED or UNKNOWN. anymail turns every ESP's errors into its own
    exception types, so one reading serves every provider."""
    return _BASE.classify_error(exc)


def batch_endpoint() -> BatchEndpoint | None:
    """The configured backend's batch endpoint, or None: send one by one."""
    if not settings.NURTURE_BATCH_SEND:
        return None
    return BATCH_ENDPOINTS.get(settings.EMAIL_BACKEND)


def events_carry_message_id(*, provider: str) -> bool:
    """Whether the named provider's events always name their message (see Provider)."""
    return any(p.events_carry_message_id for p in PROVIDERS if p.name == (provider or "").lower())


def is_soft_bounce(*, provider: str, esp_event) -> bool:
    """The named provider's reading of its own payload; for a provider we do not know by name,
    any known provider's reading (a temporary failure must never suppress an address)."""
    known = [p for p in PROVIDERS if p.name == (provider or "").lower()]
    return any(p.is_soft_bounce(esp_event) for p in (known or PROVIDERS))
