"""What differs per email provider, in one place: which batch endpoint we use (merge fields, or a list
of whole messages), which stream an email goes on (service emails transactional, series emails bulk),
how each provider marks a bounce as temporary, and how a payload anymail built for one email gives the
next one's. As anymail keeps one module per ESP over a base class, each provider is one small class over
`Provider`. What a send error means is the same for every provider: nurture/send_errors.py. Sending
(nurture/sending/) and webhooks (services/webhooks.py) ask through the functions at the end."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

from anymail.exceptions import AnymailAPIError, AnymailError
from anymail.message import AnymailRecipientStatus
from anymail.utils import CaseInsensitiveCasePreservingDict, EmailAddress
from django.conf import settings

from nurture.emails.encoded import serialised
from nurture.emails.parts import is_plain_address, own_parts
from nurture.send_errors import PERMANENT, REFUSED

DEFAULT_BATCH_RECIPIENTS = 1000

# The provider's two paths: the mail people are waiting for, and the series (bulk) mail.
TRANSACTIONAL = "transactional"
BULK = "bulk"
STREAMS = (TRANSACTIONAL, BULK)


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
    # Extra per-message options the merge needs (anymail's esp_extra), e.g. SendGrid's merge-field format.
    esp_extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MessagesBatchEndpoint:
    """An endpoint that takes a list of whole messages, each with its own body, headers and
    metadata (Postmark's /email/batch, Resend's /emails/batch, Mailjet's v3.1 Messages array): every
    email is built as for a single call, anymail's own payload code turns each into the provider's JSON, and one request
    carries them all. The answer has one entry per message, in order."""

    path: str  # after the backend's API URL
    max_messages: int


@dataclass(frozen=True)
class MessageAnswer:
    """One message's answer inside a batch call: SENT (with the provider's id), or REFUSED (the
    provider will not write to this address), or PERMANENT (this message was not accepted)."""

    kind: str  # SENT, REFUSED or PERMANENT
    provider_id: str = ""
    detail: str = ""
    # Addresses the provider named as refused: all of a REFUSED message's, or some of a SENT one's
    # (Postmark takes a message to two addresses and drops the inactive one).
    refused: tuple[str, ...] = ()


SENT = "sent"


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

    messages_batch: MessagesBatchEndpoint | None = None

    def stream_options(self, stream: str) -> dict:
        """anymail message attributes that put an email on `stream` (TRANSACTIONAL or BULK):
        {"esp_extra": {...}, "tags": [...]}. The base (SMTP, the outbox) has one path only."""
        return {}

    # --- a messages batch (only for a provider with `messages_batch`) ---

    def batch_message_data(self, payload) -> dict:
        """One message's JSON as anymail's payload code built it for a single call."""
        return json.loads(payload.serialize_data())

    def batch_body(self, messages: list[dict]) -> object:
        return messages

    def batch_answers(self, parsed) -> list[MessageAnswer]:
        raise NotImplementedError

    def batch_message_like(self, template: tuple, message, defaults: dict) -> dict | None:
        """`message`'s JSON derived from `template` ((message, its JSON) of an earlier message of
        the same call that anymail's payload code built), where the two differ only in what each
        email has of its own; None where that cannot be done exactly (then anymail builds it).
        Saves anymail's per-message work that gives the same answer for every message of a call
        (parsing the From and Reply-To addresses again, merging the defaults). The base: never."""
        return None

    def single_payload_like(self, template: tuple, message, defaults: dict, backend):
        """As batch_message_like, for one call per email: anymail's payload for `message` alone on
        `backend`, from `template` ((message, its payload)). The base: never."""
        return None

    def single_recipient_status(self, response, payload, message, backend) -> dict | None:
        """What anymail's parse_recipient_status would return for a one-email call's answer, read
        without its address parser where the answer is the plain acceptance of the one plain
        address sent; None otherwise (then anymail reads it). The base: never."""
        return None

    def is_soft_bounce(self, esp_event) -> bool:
        """anymail files some temporary failures under "bounced"; they must not suppress an address
        that may work tomorrow. The base knows no provider's payload."""
        return False


def _stream_tag(stream: str) -> list[str]:
    """A tag naming the kind of email (never the stage), where tags are how the provider splits streams."""
    return [settings.NURTURE_BULK_TAG if stream == BULK else settings.NURTURE_TRANSACTIONAL_TAG]


class Mailgun(Provider):
    name = "mailgun"
    events_carry_message_id = True
    backend = "anymail.backends.mailgun.EmailBackend"
    # %recipient.KEY% from "recipient-variables"; one id for the whole call; at most 1000 recipients.
    batch_endpoint = BatchEndpoint(
        merge_field_format="%recipient.{}%", ids_per_recipient=False, syntax_marker="%recipient.", max_recipients=1000
    )

    def stream_options(self, stream: str) -> dict:
        # Mailgun splits mail by tag, or (better for reputation) by a separate sending domain.
        options = {"tags": _stream_tag(stream)}
        domain = settings.NURTURE_MAILGUN_BULK_SENDER_DOMAIN if stream == BULK else ""
        if domain:
            options["esp_extra"] = {"sender_domain": domain}
        return options

    def is_soft_bounce(self, esp_event) -> bool:
        return isinstance(esp_event, dict) and esp_event.get("severity") == "temporary"


# Postmark names the refused addresses in its message (the pattern anymail reads for single sends).
_INACTIVE = re.compile(r"inactive addresses:\s*(.*)\.\s*Inactive recipients", re.MULTILINE)


class Postmark(Provider):
    name = "postmark"
    events_carry_message_id = True
    backend = "anymail.backends.postmark.EmailBackend"
    # Up to 500 whole messages per call, answered one entry per message in order.
    messages_batch = MessagesBatchEndpoint(path="email/batch", max_messages=500)
    # Per-message error codes that mean the address itself is refused (inactive: bounced or complained).
    REFUSED_CODES = {406}

    def stream_options(self, stream: str) -> dict:
        name = (settings.NURTURE_POSTMARK_BULK_STREAM if stream == BULK
                else settings.NURTURE_POSTMARK_TRANSACTIONAL_STREAM)
        return {"esp_extra": {"MessageStream": name}}

    def batch_message_data(self, payload) -> dict:
        return payload.data  # what anymail would post to /email for this message alone

    OWN_FIELDS = ("To", "Subject", "TextBody", "HtmlBody", "Headers", "Metadata")

    def batch_message_like(self, template: tuple, message, defaults: dict) -> dict | None:
        own = own_parts(template[0], message, defaults)
        extra = {**(defaults.get("esp_extra") or {}), **(getattr(message, "esp_extra", None) or {})}
        if own is None or set(extra) & {*self.OWN_FIELDS, "server_token"}:
            return None  # anymail writes esp_extra over the message's own fields
        data = {k: v for k, v in template[1].items() if k not in self.OWN_FIELDS}
        data.update({"To": ", ".join(own["to"]), "Subject": own["subject"], "TextBody": own["text"]})
        if own["html"] is not None:
            data["HtmlBody"] = own["html"]
        if own["headers"]:
            data["Headers"] = [{"Name": name, "Value": value} for name, value in own["headers"].items()]
        if own["metadata"] is not None:
            data["Metadata"] = own["metadata"]
        return data

    def single_payload_like(self, template: tuple, message, defaults: dict, backend):
        first, payload = template
        try:
            endpoint = payload.get_api_endpoint()
        except AnymailError:  # anymail refuses the template's options: it says so for this email too
            return None
        if backend.use_bulk_api or backend.generate_message_id or endpoint != "email":
            return None  # anymail's other endpoints post more than the message's JSON
        data = self.batch_message_like((first, payload.data), message, defaults)
        if data is None:
            return None
        derived = copy.copy(payload)  # the rest as anymail keeps it: credentials, cc and bcc
        derived.message, derived.backend, derived.data = message, backend, data
        derived.headers = dict(payload.headers)  # anymail's get_request_params adds the token to it
        # As anymail's serialize_data for "email" (its data as JSON), the bodies' JSON made at render:
        derived.serialize_data = lambda: serialised([(derived.data, message)], derived.serialize_json)
        # What anymail's parse_recipient_status reads: plain addresses (own_parts), split at the "@" as it would.
        derived.to_emails = [EmailAddress(username=local, domain=domain)
                             for local, _at, domain in (address.rpartition("@") for address in message.to)]
        return derived

    def single_recipient_status(self, response, payload, message, backend) -> dict | None:
        # anymail (backends/postmark.py) parses the answer's To with Python's email package: taken
        # here only for a plain "OK" (no inactive addresses, no delay) naming the one plain address
        # sent, which that parse gives back unchanged, so the result is anymail's.
        address = payload.to_emails[0].addr_spec if len(payload.to_emails) == 1 else None
        answer = backend.deserialize_json_response(response, payload, message) if address else None
        if (payload.cc_and_bcc_emails or not isinstance(answer, dict) or answer.get("ErrorCode", 0) != 0
                or answer.get("Message") != "OK" or answer.get("To") != address or not is_plain_address(address)
                or not isinstance(answer.get("MessageID"), str)):
            return None
        return CaseInsensitiveCasePreservingDict({address: AnymailRecipientStatus(answer["MessageID"], "sent")})

    def batch_answers(self, parsed) -> list[MessageAnswer]:
        answers = []
        for entry in parsed:
            code = int(entry.get("ErrorCode", 0) or 0)
            named = _INACTIVE.search(str(entry.get("Message", "")))
            refused = tuple(a.strip().lower() for a in named.group(1).split(",")) if named else ()
            if code == 0:
                answers.append(MessageAnswer(SENT, provider_id=str(entry.get("MessageID", "")), refused=refused))
            else:
                kind = REFUSED if code in self.REFUSED_CODES else PERMANENT
                # Postmark's message quotes the addresses: the reason keeps the code only.
                answers.append(MessageAnswer(kind, detail=f"Postmark ErrorCode {code}", refused=refused))
        return answers

    def is_soft_bounce(self, esp_event) -> bool:
        return isinstance(esp_event, dict) and esp_event.get("Type") == "SoftBounce"


class SparkPost(Provider):
    name = "sparkpost"
    events_carry_message_id = True
    backend = "anymail.backends.sparkpost.EmailBackend"

    def stream_options(self, stream: str) -> dict:
        # SparkPost's own split: transactional mail ignores list unsubscribes and is paced apart.
        return {"esp_extra": {"options": {"transactional": stream == TRANSACTIONAL}}}
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
    # Personalizations: one body, each recipient's own substitutions (literal text replaced), headers
    # and custom_args; anymail gives each recipient its own id (anymail_id), which webhooks report.
    batch_endpoint = BatchEndpoint(
        merge_field_format="-nurture-{}-", ids_per_recipient=True, syntax_marker="-nurture-", max_recipients=1000,
        esp_extra=(("merge_field_format", "-nurture-{}-"),),
    )

    def stream_options(self, stream: str) -> dict:
        # Categories split the statistics; an unsubscribe (ASM) group makes series mail bulk mail.
        options = {"tags": _stream_tag(stream)}
        group = settings.NURTURE_SENDGRID_BULK_ASM_GROUP if stream == BULK else 0
        if group:
            options["esp_extra"] = {"asm": {"group_id": group}}
        return options

    def is_soft_bounce(self, esp_event) -> bool:
        return isinstance(esp_event, dict) and esp_event.get("type") == "blocked"


class AmazonSES(Provider):
    name = "amazon_ses"
    backend = "anymail.backends.amazon_ses.EmailBackend"

    def stream_options(self, stream: str) -> dict:
        name = (settings.NURTURE_SES_BULK_CONFIGURATION_SET if stream == BULK
                else settings.NURTURE_SES_TRANSACTIONAL_CONFIGURATION_SET)
        return {"esp_extra": {"ConfigurationSetName": name}} if name else {}


class Resend(Provider):
    name = "resend"
    backend = "anymail.backends.resend.EmailBackend"
    # Up to 100 whole messages per call; the call is accepted or refused as a whole.
    messages_batch = MessagesBatchEndpoint(path="emails/batch", max_messages=100)

    def batch_answers(self, parsed) -> list[MessageAnswer]:
        return [MessageAnswer(SENT, provider_id=str(entry.get("id", ""))) for entry in (parsed or {}).get("data", [])]


class _CallRefused(AnymailAPIError):
    """A whole call's error read from the answer's body (no response object): classified by status."""

    def describe_response(self):
        return f"{self.esp_name or 'ESP'} API status {self.status_code}" if self.status_code else None


class Mailjet(Provider):
    name = "mailjet"
    events_carry_message_id = True
    backend = "anymail.backends.mailjet.EmailBackend"
    # Send API v3.1: a "Messages" array (50 per call), each answered in order; a partial failure is
    # HTTP 400 with a "success" (each recipient's MessageID) or "error" (its Errors) per message.
    messages_batch = MessagesBatchEndpoint(path="send", max_messages=50)

    def stream_options(self, stream: str) -> dict:
        # No separate streams at Mailjet: anymail's tag (its CustomCampaign) keeps each kind apart.
        return {"tags": _stream_tag(stream)}

    def batch_message_data(self, payload) -> dict:
        """anymail's single send is {"Globals": {...}, "Messages": [{"To": [...]}]}: merged, one
        message. Its CustomID is the delivery (in the answer and Mailjet's events)."""
        [own] = payload.data["Messages"]
        message = {**payload.data["Globals"], **own}
        delivery = (payload.metadata or {}).get("delivery")
        if delivery is not None:
            message["CustomID"] = str(delivery)
        return message

    def batch_body(self, messages: list[dict]) -> object:
        return {"Messages": messages}

    def batch_answers(self, parsed) -> list[MessageAnswer]:
        if not isinstance(parsed, dict) or "Messages" not in parsed:
            # A global error (nothing sent); anymail lets Mailjet's 4xx through, so raised here.
            status = parsed.get("StatusCode") if isinstance(parsed, dict) else None
            code = (parsed or {}).get("ErrorCode", "no Messages in the answer")
            raise _CallRefused(f"Mailjet refused the call: {code}", status_code=int(status) if status else None)
        answers = []
        for entry in parsed["Messages"]:
            if entry.get("Status") == "success":
                to = entry.get("To") or [{}]
                answers.append(MessageAnswer(SENT, provider_id=str(to[0].get("MessageID", ""))))
                continue
            errors = entry.get("Errors") or [{}]
            codes = ", ".join(str(e.get("ErrorCode", "")) for e in errors)
            # The reason keeps the codes only: Mailjet's messages may quote the address.
            answers.append(MessageAnswer(PERMANENT, detail=f"Mailjet {codes}"))
        return answers

    def is_soft_bounce(self, esp_event) -> bool:
        # Mailjet's bounce event says whether the failure is permanent ("hard_bounce").
        return isinstance(esp_event,
                          dict) and esp_event.get("event") == "bounce" and esp_event.get("hard_bounce") is False


PROVIDERS: tuple[Provider, ...] = (Mailgun(), Postmark(), SparkPost(), SendGrid(), AmazonSES(), Resend(), Mailjet())
MAILGUN_BACKEND = Mailgun.backend
SPARKPOST_BACKEND = SparkPost.backend
# EMAIL_BACKEND -> its batch endpoint (a table, so a test can add a backend of its own).
BATCH_ENDPOINTS: dict[str, BatchEndpoint] = {p.backend: p.batch_endpoint for p in PROVIDERS if p.batch_endpoint}
_BASE = Provider()


def batch_endpoint() -> BatchEndpoint | None:
    """The configured backend's merge-field batch endpoint, or None."""
    if not settings.NURTURE_BATCH_SEND:
        return None
    return BATCH_ENDPOINTS.get(settings.EMAIL_BACKEND)


def events_carry_message_id(*, provider: str) -> bool:
    """Whether the named provider's events always name their message (see Provider)."""
    return any(p.events_carry_message_id for p in PROVIDERS if p.name == (provider or "").lower())


def configured() -> Provider:
    """The provider of the configured EMAIL_BACKEND (the base for SMTP, the outbox and others)."""
    return next((p for p in PROVIDERS if p.backend == settings.EMAIL_BACKEND), _BASE)


def messages_batch_provider() -> Provider | None:
    """The configured provider if it takes a list of whole messages per call (and batching is on)."""
    provider = configured()
    return provider if settings.NURTURE_BATCH_SEND and provider.messages_batch else None


def message_stream_set(message, *, stream: str) -> None:
    """Put `message` on the configured provider's TRANSACTIONAL or BULK path (settings in
    config/settings.py, "Provider streams"). Keeps what the message already asks of the ESP."""
    options = configured().stream_options(stream)
    if "esp_extra" in options:
        message.esp_extra = {**(getattr(message, "esp_extra", None) or {}), **options["esp_extra"]}
    if "tags" in options:
        message.tags = [*(getattr(message, "tags", None) or []), *options["tags"]]


def is_soft_bounce(*, provider: str, esp_event) -> bool:
    """The named provider's reading of its own payload; for a provider we do not know by name,
    any known provider's reading (a temporary failure must never suppress an address)."""
    known = [p for p in PROVIDERS if p.name == (provider or "").lower()]
    return any(p.is_soft_bounce(esp_event) for p in (known or PROVIDERS))
