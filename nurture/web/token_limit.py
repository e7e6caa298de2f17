"""A per-client limit on POSTs to the pages a link opens (docs/security.md, "One mailbox, one
identity, and logs"): one leaked or forwarded link must not become a machine for mailing strangers
(carer requests), churning someone's choices or filling the hourly ceiling.

Every POST to a route that takes a token counts against the client's NURTURE_TOKEN_POST_RATE
(django-ratelimit on the shared cache; the client address from nurture.web.client_ip); over it the
answer is 429 with Retry-After and a plain page. Routes read from the URL resolver, so a new token
page is limited without being listed here.

Stopping is never limited: a person must always be able to stop our emails, however many times
their connection posted before (a shared office or mobile network, a mail client retrying the
one-click List-Unsubscribe POST). So `unsubscribe` and the carer's `carer_stop` are exempt, and so
are the preference page's "Stop all emails" and "Delete my data" buttons; they change nothing when
repeated and send nobody an email a stranger could aim.
"""
from __future__ import annotations

from django.conf import settings

from nurture.web.answers import rate_limited

# Routes (in the "nurture" namespace) a person uses to stop emails: never refused.
STOP_ROUTES = {"unsubscribe", "carer_stop"}
# The buttons of other token pages that stop emails or erase the data (the preference page's "Stop
# all emails" and "Delete my data"): never refused either.
STOP_ACTIONS = {"unsubscribe", "unsubscribe_confirmed", "erase", "erase_confirmed"}


class TokenPostLimit:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or "token" not in view_kwargs:
            return None
        match = request.resolver_match
        if match is None or match.url_name in STOP_ROUTES or request.POST.get("action") in STOP_ACTIONS:
            return None
        return rate_limited(request, group="nurture.token_post", rate=settings.NURTURE_TOKEN_POST_RATE, from_link=True)
