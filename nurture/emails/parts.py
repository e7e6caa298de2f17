"""What each message of a batch call has of its own, apart from what it shares with the call's
first message: a messages batch (nurture/providers.py, Provider.batch_message_like) builds the
first message's JSON through anymail's payload code and the next ones from it and these parts."""
from __future__ import annotations

import re

from anymail.utils import force_non_lazy, force_non_lazy_dict

# An address anymail would write back as given: a dot-atom local part and an ASCII domain, no
# display name (anything else, e.g. a name or an international domain, is left to anymail).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
# What must be the same for two messages to share everything but their own parts.
_SHARED_ATTRS = (
    "from_email", "cc", "bcc", "reply_to", "attachments", "content_subtype", "envelope_sender", "send_at", "tags",
    "track_clicks", "track_opens", "template_id", "merge_data", "merge_global_data", "merge_headers",
    "merge_metadata", "esp_extra",
)
_MISSING = object()


def is_plain_address(value) -> bool:
    """An address anymail (and Python's email parser under it) gives back exactly as written."""
    return isinstance(value, str) and _PLAIN_ADDRESS.match(value) is not None


def own_parts(first, message, defaults: dict) -> dict | None:
    """What `message` has of its own (to, subject, text, HTML, headers, metadata), if everything
    else is `first`'s (an earlier message of the same call) and anymail's payload code would pass
    those parts through as they are (anymail's `defaults` add none of them); else None."""
    if type(message) is not type(first) or any(
        getattr(message, attr, _MISSING) != getattr(first, attr, _MISSING) for attr in _SHARED_ATTRS
    ):
        return None
    if message.content_subtype != "plain" or {"to", "subject", "body", "extra_headers", "metadata",
                                              "alternatives"} & set(defaults):
        return None
    to = list(message.to)
    headers = force_non_lazy_dict(message.extra_headers)
    html = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    if (not to or not all(is_plain_address(a) for a in to)
            or {k.lower() for k in headers} & {"from", "to",
                                               "reply-to"} or len({k.lower() for k in headers}) != len(headers)
            or len(html) != len(message.alternatives) or len(html) > 1):
        return None
    metadata = getattr(message, "metadata", _MISSING)
    # Converted as anymail's payload code converts them (lazy text forced, dicts copied).
    return {"to": to, "subject": force_non_lazy(message.subject), "text": force_non_lazy(message.body),
            "html": force_non_lazy(html[0]) if html else None, "headers": headers,
            "metadata": None if metadata is _MISSING or metadata is None else force_non_lazy_dict(metadata)}
