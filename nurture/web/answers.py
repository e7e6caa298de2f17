"""The public pages' shared answers, in one place: the headers of a page a link opened, the plain
bad-link page, "please wait a little" (429 with Retry-After), the CSRF failure page (CSRF_FAILURE_VIEW)
and the friendly 500 (handler500). They show nothing about anyone (docs/security.md, "Public surface").
Imports no view module: every view module imports this one."""
from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.utils import translation
from django_ratelimit.core import get_usage

from nurture import tokens

# Links whose expiry offers "email me a new link".
REFRESHABLE = (tokens.PREFERENCES, tokens.VIEW_ONLINE, tokens.PAUSE)


def private(response: HttpResponse, *, referrer: str = "same-origin") -> HttpResponse:
    """A page whose URL carries a token: kept out of caches, search engines and other sites' Referer headers."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    # Pages with forms need "same-origin": with "no-referrer" a browser sends "Origin: null" and
    # Django's CSRF check refuses the post.
    response["Referrer-Policy"] = referrer
    return response


def bad_link(request, purpose: str, token: str, error: tokens.TokenError) -> HttpResponse:
    """The plain bad-link page (400): "replaced" for a revoked link, and for an expired preference,
    view-online or pause link the offer of a new one by email. Nothing about whose link it was."""
    new_links_url = reverse("nurture:new_links_request",
                            args=[token]) if error.expired and purpose in REFRESHABLE else ""
    return private(render(
        request, "nurture/bad_link.html",
        {"purpose": purpose, "expired": error.expired, "new_links_url": new_links_url,
         "replaced": isinstance(error, tokens.TokenRevoked)}, status=400,
    ))


def too_many(request, *, seconds: int, **context) -> HttpResponse:
    """429 "please wait a little", saying when to try again, with Retry-After."""
    response = render(request, "nurture/too_many.html", {"retry_minutes": max(1, math.ceil(seconds / 60)), **context},
                      status=429)
    response["Retry-After"] = str(seconds)
    return response


def rate_limited(request, *, group: str, rate: str = "", from_link: bool = False) -> HttpResponse | None:
    """Count this post against the client's `rate` (NURTURE_SIGNUP_RATE unless given;
    django-ratelimit, on the shared cache; the client address from nurture.web.client_ip). Returns
    a 429 page, or None. from_link: the page a link opened (it says how to stop emails meanwhile)."""
    usage = get_usage(
        request, group=group, key="ip", rate=rate or settings.NURTURE_SIGNUP_RATE, method="POST", increment=True
    )
    if usage is None or not usage["should_limit"]:
        return None
    seconds = max(1, int(usage["time_left"])) if usage["time_left"] > 0 else 60
    language = request.POST.get("language") if request.POST.get("language") in ("en", "es") else None
    with translation.override(language or translation.get_language() or "en"):
        return too_many(request, seconds=seconds, from_link=from_link)


def too_many_carer_requests(request, *, retry_after: int) -> HttpResponse:
    """429 with when to try again (NURTURE_CARER_REQUESTS_PER_DAY), on the preference page's carer form."""
    return private(too_many(request, seconds=retry_after, carer_requests=True))


def csrf_failure(request, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a button pressed without the form's cookie (cookies blocked, a page left
    open from another browser) gets a plain page saying what to do, in the site's layout and
    language, instead of Django's technical English page (whose inline styles the CSP blocks).
    The reason is not shown: it is for developers."""
    return private(render(request, "nurture/csrf_failed.html", status=403))


def server_error(request) -> HttpResponse:
    """handler500: templates/500.html, standing alone (no context processors, no request: whatever
    failed may be one of them), as Django's own handler renders it."""
    return HttpResponseServerError(loader.get_template("500.html").render())
