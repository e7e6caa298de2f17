"""Keep link tokens and email addresses out of every log line.

The tokens in /confirm/, /unsubscribe/, /preferences/, /email/, /links/ and /feedback/ paths open a person's
preferences or act for them, so a request path that reaches a log (the access log, Django's
"Bad Request: /preferences/<token>/" and "Forbidden" warnings, a proxy's error line) is rewritten
to /preferences/[token]/. `RedactTokens` is a logging filter on the handlers in LOGGING; for an
access log outside Django's logging (gunicorn's), point its logger at the same filter
(docs/security.md).
"""
from __future__ import annotations

import logging
import re

TOKEN_PREFIXES = ("confirm", "unsubscribe", "preferences", "email", "links", "feedback")
# The segment after one of the prefixes, up to the next slash, space, quote, query or end.
_TOKEN_PATH = re.compile(r"(/(?:%s)/)[^/\s\"'?#]+" % "|".join(TOKEN_PREFIXES))


def redact_paths(text: str) -> str:
    return _TOKEN_PATH.sub(r"\1[token]", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a badly formatted record: leave it to the handler to report
            return True
        redacted = redact_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        # Django's request warnings carry the request; a handler that formats it would print the path.
        request = getattr(record, "request", None)
        if request is not None and _TOKEN_PATH.search(getattr(request, "path", "") or ""):
            record.request = None
        return True


# Being on this list is health information, and logs travel further than the database: anything
# shaped like an email address is written "[address]". An address ends in a name (a top-level
# domain), so a broker URL such as "redis://:**@127.0.0.1" is left alone.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&*+/=?^_{|}~-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")


def redact_addresses(text: str) -> str:
    return _ADDRESS.sub("[address]", text)


class RedactAddresses(logging.Filter):
    """In the message and in a traceback's text (an SMTP error may quote the recipient)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a badly formatted record: leave it to the handler to report
            return True
        if "@" in message:
            record.msg, record.args = redact_addresses(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_addresses(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_addresses(record.exc_text)
        return True
