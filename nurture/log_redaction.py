"""Keep link tokens, email addresses and query strings out of every log line (docs/security.md,
"Logs and error reports").

Redaction goes by shape, not by a list of routes, so a route added later is covered too:
- a path segment that looks like a token (16 or more characters of the URL-safe alphabet, which our
  tokens, old signed links and any pasted secret are) becomes `[token]`: /pause/[token]/; so does
  any segment where a route (read from the URL resolver) takes a token, however short;
- a query string with a value in it becomes `?[query]` (admin searches such as ?email=, a metrics
  token sent as ?token=, whatever a person typed into a link);
- anything shaped like an email address, plain or percent-encoded, becomes `[address]`.

`RedactPersonalData` applies this to a record's message, its traceback and every extra attribute
(the JSON format writes them all): Django's request warnings ("Bad Request", "Forbidden (CSRF
...)", "Not Found") carry the request object, which a formatter would print with its full path and
query string, so it is replaced by its method and redacted path. It is a filter on the handlers in
LOGGING; for an access log outside Django's logging (gunicorn's), point its logger at the same
handlers (gunicorn.conf.py does). config/sentry.py uses `redact_text` for error reports.
"""
from __future__ import annotations

import logging
import re

# A whole path segment (after a slash, up to the next slash, query, fragment, quote, space or end).
_TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_\-:=%+~]{16,}(?=[/?#\s\"'<>),;]|$)")
# A query string holding at least one value.
_QUERY = re.compile(r"\?[^\s\"'<>#]*=[^\s\"'<>#]*")
# Being on this list is health information, and logs travel further than the database: anything
# shaped like an email address is written "[address]". An address ends in a name (a top-level
# domain), so a broker URL such as "redis://:**@127.0.0.1" is left alone. Percent-encoded too
# (%40 for "@", %22 for a quote), as in a logged URL.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%*+^_{|}~\"\\-]+(?:@|%40)(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b", re.I)

# Attributes every LogRecord has; anything else on a record is an `extra` a formatter may print.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "task_id", "task_name",
                                                                        "delivery_id"}


def redact_addresses(text: str) -> str:
    return _ADDRESS.sub("[address]", text)


_routes: re.Pattern | None = None


def _token_routes() -> re.Pattern | None:
    """Whatever follows the fixed part of a route that takes a token (/preferences/, /carer/stop/
    ...), read from the URL resolver once: a short or odd "token" sent there is redacted too."""
    global _routes
    if _routes is None:
        try:
            from django.urls import get_resolver

            prefixes = set()

            def walk(patterns, prefix=""):
                for pattern in patterns:
                    route = prefix + str(pattern.pattern)
                    if hasattr(pattern, "url_patterns"):
                        walk(pattern.url_patterns, route)
                    elif re.search(r"<(?:\w+:)?(token|email|address)>", route):
                        prefixes.add(route.split("<", 1)[0])

            walk(get_resolver().url_patterns)
        except Exception:  # URLs not loadable yet (start-up): the shape rule still applies; try again later
            return None
        alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True) if p)
        _routes = re.compile(r"(/(?:%s))[^/\s\"'?#]+" % alternatives if alternatives else r"()(?!)")
    return _routes


def redact_text(text: str) -> str:
    text = _TOKEN_SEGMENT.sub("[token]", redact_addresses(_QUERY.sub("?[query]", text)))
    routes = _token_routes()
    return routes.sub(r"\1[token]", text) if routes is not None else text


def describe_request(request) -> str:
    """What a log may say about a request: its method and redacted path, never its query string."""
    return redact_text(f"{getattr(request, 'method', '') or ''} {getattr(request, 'path', '') or ''}".strip())


def _redacted(value):
    if isinstance(value, str):
        return redact_text(value)
    if hasattr(value, "path") and hasattr(value, "META"):  # an HttpRequest
        return describe_request(value)
    return value


class RedactPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a badly formatted record: leave it to the handler to report
            message = None
        if message is not None:
            redacted = redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # The redacted text only: the JSON formatter would format exc_info afresh.
            record.exc_text, record.exc_info = redact_text(record.exc_text), None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD:
                setattr(record, name, _redacted(value))
        return True


# The names LOGGING used before: one filter does it all now.
RedactTokens = RedactAddresses = RedactPersonalData
