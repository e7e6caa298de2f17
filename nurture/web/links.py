"""The pages behind the links in emails: confirm, unsubscribe, view in browser, and "email me a new
link" (the preference centre is nurture/web/preferences.py). Tokens are opaque and purpose-bound
(nurture/tokens.py); a bad link gets the plain page, an expired preference or view-online link offers
a new one by email and shows nothing about anyone (docs/security.md, "Public surface")."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import tasks, tokens
from nurture.emails.layout import as_web_page
from nurture.emails.messages import delivery_web_html
from nurture.models import Subscriber
from nurture.selectors.deliveries import delivery_from_token
from nurture.selectors.subscribers import confirmation_awaits, subscriber_and_extra_from_token
from nurture.services import subscribers as subscriber_services
from nurture.web.answers import REFRESHABLE, private, rate_limited
from nurture.web.forms import ConfirmForm, PauseForm
from nurture.web.token_view import token_view


def _subscriber_and_request(*, purpose: str, token: str) -> tuple[Subscriber, int | None]:
    """A confirmation link names the subscriber and their sign-up request (none for a link made before requests)."""
    subscriber, extra = subscriber_and_extra_from_token(purpose=purpose, token=token)
    return subscriber, (int(extra) if extra.isdigit() else None)


@require_http_methods(["GET", "POST"])
@token_view(tokens.CONFIRM, read=_subscriber_and_request)
def confirm(request, found, token: str):
    """GET shows the choices that will apply (the sign-up's), changeable, and a button; it changes
    nothing (mail scanners open links). POST confirms with the choices posted (subscriber_confirm
    with the request the link names); a bad value is a 400 with the field's error, nothing confirmed."""
    subscriber, request_id = found
    if not confirmation_awaits(subscriber=subscriber, request_id=request_id):
        # A link that no longer confirms anything (used, or superseded by a later sign-up).
        with translation.override(subscriber.language):
            return private(render(request, "nurture/confirm.html", {"subscriber": subscriber, "awaiting": False}))
    choices = subscriber_services.confirm_choices(subscriber=subscriber, request_id=request_id)
    if request.method == "POST":
        form = ConfirmForm.from_post(request.POST, choices)
        if form.is_valid():
            subscriber = subscriber_services.subscriber_confirm(
                subscriber_id=subscriber.pk, request_id=request_id, choices=form.cleaned_data,
            )
            with translation.override(subscriber.language):
                context = {"subscriber": subscriber, "token": tokens.make_token(
                    purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk, link_version=subscriber.link_version
                )}
                return private(render(request, "nurture/confirmed.html", context))
        language = form.data.get("language") if form.data.get("language") in ("en", "es") else choices["language"]
        with translation.override(language):
            return private(render(request, "nurture/confirm.html", {"awaiting": True, "form": form}, status=400))
    with translation.override(choices["language"]):
        return private(render(request, "nurture/confirm.html",
                              {"awaiting": True, "form": ConfirmForm(initial=choices)}))


@csrf_exempt  # RFC 8058 one-click POSTs come from mail clients, which carry no CSRF token.
@require_http_methods(["GET", "POST"])
@token_view(tokens.UNSUBSCRIBE)
def unsubscribe(request, subscriber: Subscriber, token: str):
    """One button stops everything; the same page first offers a break instead (as the best senders
    do, without making stopping harder). Any POST but the pause form's stops: a mail client's
    one-click POST carries no `action`. GET only shows the page: mail scanners open links, but they
    do not press buttons. The pause answer links nowhere else: this link never expires, so it must
    not lead to the preference centre."""
    with translation.override(subscriber.language):
        if request.method == "POST" and request.POST.get("action") == "pause":
            return _pause_instead(request, subscriber)
        if request.method == "POST":
            subscriber = subscriber_services.subscriber_unsubscribe(subscriber_id=subscriber.pk)
            return private(render(request, "nurture/unsubscribed.html", {"subscriber": subscriber}))
        context = {"subscriber": subscriber, "pause_form": PauseForm(preselect=False)}
        return private(render(request, "nurture/unsubscribe.html", context))


def _pause_instead(request, subscriber: Subscriber) -> HttpResponse:
    form = PauseForm(request.POST, preselect=False)
    if form.is_valid() and subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        subscriber = subscriber_services.subscriber_pause(
            subscriber_id=subscriber.pk, weeks=form.cleaned_data["weeks"], source="unsubscribe_link"
        )
        return private(render(request, "nurture/paused.html", {"subscriber": subscriber}))
    return private(render(request, "nurture/unsubscribe.html", {"subscriber": subscriber, "pause_form": form},
                          status=400))


@require_http_methods(["GET"])
@token_view(tokens.VIEW_ONLINE, read=delivery_from_token)
def view_online(request, delivery, token: str):
    """An email as a web page, from its "view in browser" link. Its "manage your emails" link
    leads to the "email me a new link" page: this page mints no preference or erase link."""
    manage_url = tokens.absolute_url(reverse("nurture:new_links_request", args=[token]))
    response = HttpResponse(as_web_page(delivery_web_html(delivery, manage_url=manage_url)))
    # The email's own inline styles, nothing else (the site's policy would block its styles).
    response["Content-Security-Policy"] = settings.EMAIL_HTML_CSP
    return private(response, referrer="no-referrer")


@require_http_methods(["GET", "POST"])
def new_links_request(request, token: str):
    """"Email me a new link" for a preference or view-online link, current or expired. The POST
    answers the same page whatever the link was (ours or not, the person still here or not); the
    email, if any, goes to the address on file, decided in the worker."""
    if request.method == "POST":
        refused = rate_limited(request, group="nurture.new_links_request")
        if refused is not None:
            return refused
        subscriber_services.subscriber_new_links_request(token=token, purposes=REFRESHABLE,
                                                         enqueue=tasks.enqueue_new_links)
        return private(render(request, "nurture/new_links_request.html", {"sent": True}))
    return private(render(request, "nurture/new_links_request.html", {"sent": False}))
