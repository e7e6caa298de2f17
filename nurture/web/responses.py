"""Answers the public pages share: the plain page for a bad link, and the headers of a page whose
URL carries a token."""
from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from nurture import tokens


def bad_link(request, purpose: str, error: tokens.TokenError) -> HttpResponse:
    return render(request, "nurture/bad_link.html", {"purpose": purpose, "expired": error.expired}, status=400)


def private(response: HttpResponse, *, referrer: str = "same-origin") -> HttpResponse:
    """The URL carries a token and the page personal data: no caches, no search engines, no Referer
    to other sites. Pages with forms keep "same-origin" (with "no-referrer" browsers post them with
    Origin: null, which the CSRF check rightly refuses)."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = referrer
    return response
