"""What a send error means for the delivery, the same for every provider (anymail turns each ESP's
errors into its own exception types; Django's SMTP backend raises smtplib's). The senders and the
tasks ask here; nurture/providers.py reads a batch answer's kinds with the same names."""
from __future__ import annotations

import smtplib
import socket

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused

TRANSIENT = "transient"  # try again later
PERMANENT = "permanent"  # the provider said no to this message
REFUSED = "refused"  # the provider will not write to this address
UNKNOWN = "unknown"  # we cannot tell whether it went


def classify_send_error(exc: BaseException) -> str:
    """TRANSIENT, PERMANENT, REFUSED or UNKNOWN. anymail turns every ESP's errors into its own
    exception types, so one reading serves every provider."""
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
    if isinstance(exc,
        (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, socket.timeout, TimeoutError)):
        return TRANSIENT
    if isinstance(exc, smtplib.SMTPResponseException):
        return TRANSIENT if 400 <= exc.smtp_code < 500 else PERMANENT
    return UNKNOWN
