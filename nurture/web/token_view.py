"""`@token_view(purpose)`: a page behind a link in an email. The token in the URL becomes what it
names (the subscriber, unless `read` says otherwise: the carer hand-off, a delivery...), or the
request gets the plain bad-link page (nurture.web.answers.bad_link: 400, "replaced" for a revoked
link, "email me a new link" for an expired preference, view-online or pause link). Only the read is
guarded: an error in the view itself is not turned into a bad link.

POSTs to these pages count against the client's limit (nurture.web.token_limit, a middleware that
sees every route taking a token; stopping is never limited)."""
from __future__ import annotations

import functools

from nurture import tokens
from nurture.selectors.subscribers import subscriber_from_token
from nurture.web.answers import bad_link


def token_view(purpose: str, *, read=subscriber_from_token):
    """Decorates `view(request, found, token)`; `read(purpose=, token=)` raises tokens.TokenError for a bad link."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, token: str):
            try:
                found = read(purpose=purpose, token=token)
            except tokens.TokenError as error:
                return bad_link(request, purpose, token, error)
            return view(request, found, token)

        return wrapper

    return decorator
