"""The pages behind the links in emails: confirm, unsubscribe, preferences, view in browser, and
"email me a new link". Tokens are opaque and purpose-bound (nurture/tokens.py); a bad link gets the
plain page, an expired preference or view-online link offers a new one by email and shows nothing
about anyone (docs/security.md, "Public surface")."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import recipients, selectors, tasks, tokens
from nurture.emails.layout import as_web_page
from nurture.emails.messages import delivery_web_html
from nurture.models import Subscriber
from nurture.services import retention
from nurture.services import subscribers as subscriber_services
from nurture.web.forms import ConfirmForm, PauseForm, PreferencesForm
from nurture.web.signup import rate_limited

# Links whose expiry offers "email me a new link".
REFRESHABLE = (tokens.PREFERENCES, tokens.VIEW_ONLINE, tokens.PAUSE)


def _private(response: HttpResponse, *, referrer: str = "same-origin") -> HttpResponse:
    # The URL carries a token: keep it out of caches, search engines and other sites' Referer headers.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    # Pages with forms need "same-origin": with "no-referrer" a browser sends "Origin: null" and
    # Django's CSRF check refuses the post.
    response["Referrer-Policy"] = referrer
    return response


def _bad_link(request, purpose: str, token: str, error: tokens.TokenError):
    new_links_url = reverse("nurture:new_links_request", args=[token]) if error.expired and purpose in REFRESHABLE else ""
    return _private(render(
        request, "nurture/bad_link.html",
        {"purpose": purpose, "expired": error.expired, "new_links_url": new_links_url,
         "replaced": isinstance(error, tokens.TokenRevoked)}, status=400,
    ))


def _subscriber_from_link(request, purpose: str, token: str):
    """(subscriber, None) for a good link, or (None, the plain bad-link page)."""
    try:
        return subscriber_services.subscriber_from_token(purpose=purpose, token=token), None
    except tokens.TokenError as error:
        return None, _bad_link(request, purpose, token, error)


def _one_button_page(request, token: str, *, purpose: str, action, ask_template: str, done_template: str, ask_extra=None):
    """GET shows a page with one button; only the POST acts. Mail scanners open links, but they
    do not press buttons, so a scanned link neither confirms nor unsubscribes anyone."""
    try:
        subscriber = subscriber_services.subscriber_from_token(purpose=purpose, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, purpose, token, error)
    with translation.override(subscriber.language):
        if request.method == "POST":
            subscriber = action(subscriber_id=subscriber.pk)
            return _private(render(request, done_template, {"subscriber": subscriber}))
        return _private(render(request, ask_template, {"subscriber": subscriber, **(ask_extra or {})}))


@require_http_methods(["GET", "POST"])
def confirm(request, token: str):
    """GET shows the choices that will apply (the sign-up's), changeable, and a button; it changes
    nothing (mail scanners open links). POST confirms with the choices posted (subscriber_confirm
    with the request the link names); a bad value is a 400 with the field's error, nothing confirmed."""
    try:
        subscriber, request_id = subscriber_services.confirm_from_token(token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.CONFIRM, token, error)
    if not selectors.confirmation_awaits(subscriber=subscriber, request_id=request_id):
        # A link that no longer confirms anything (used, or superseded by a later sign-up).
        with translation.override(subscriber.language):
            return _private(render(request, "nurture/confirm.html", {"subscriber": subscriber, "awaiting": False}))
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
                return _private(render(request, "nurture/confirmed.html", context))
        language = form.data.get("language") if form.data.get("language") in ("en", "es") else choices["language"]
        with translation.override(language):
            return _private(render(request, "nurture/confirm.html", {"awaiting": True, "form": form}, status=400))
    with translation.override(choices["language"]):
        return _private(render(request, "nurture/confirm.html", {"awaiting": True, "form": ConfirmForm(initial=choices)}))


@csrf_exempt  # RFC 8058 one-click POSTs come from mail clients, which carry no CSRF token.
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """One button stops everything; the same page first offers a break instead (as the best senders
    do, without making stopping harder). Any POST but the pause form's stops: a mail client's
    one-click POST carries no `action`. The pause answer links nowhere else: this link never
    expires, so it must not lead to the preference centre."""
    if request.method == "POST" and request.POST.get("action") == "pause":
        return _unsubscribe_page_pause(request, token)
    return _one_button_page(
        request, token, purpose=tokens.UNSUBSCRIBE, action=subscriber_services.subscriber_unsubscribe,
        ask_template="nurture/unsubscribe.html", done_template="nurture/unsubscribed.html",
        ask_extra={"pause_form": PauseForm(preselect=False)},
    )


def _unsubscribe_page_pause(request, token: str):
    subscriber, refused = _subscriber_from_link(request, tokens.UNSUBSCRIBE, token)
    if refused:
        return refused
    with translation.override(subscriber.language):
        form = PauseForm(request.POST, preselect=False)
        if form.is_valid() and subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
            subscriber = subscriber_services.subscriber_pause(
                subscriber_id=subscriber.pk, weeks=form.cleaned_data["weeks"], source="unsubscribe_link"
            )
            return _private(render(request, "nurture/paused.html", {"subscriber": subscriber}))
        return _private(render(request, "nurture/unsubscribe.html", {"subscriber": subscriber, "pause_form": form}, status=400))


@require_http_methods(["GET", "POST"])
def preferences(request, token: str):
    subscriber, refused = _subscriber_from_link(request, tokens.PREFERENCES, token)
    if refused:
        return refused
    if subscriber.status == Subscriber.Status.DECEASED:  # final: nothing on this page applies any more
        with translation.override(subscriber.language):
            return _private(render(request, "nurture/bereavement_done.html", {"already": True}))
    from nurture.web import care  # the care actions (care imports this module's helpers)

    with translation.override(subscriber.language):
        form = PreferencesForm(instance=subscriber)
        forms = care.care_forms(subscriber)
        saved = failed = unknown_action = False
        action = ""
        if request.method == "POST":
            action = request.POST.get("action", "save")
            if action in care.CARE_ACTIONS:  # pause, treatment date, carer: their own forms
                try:
                    forms, saved = care.care_action(request, subscriber, action)
                except care.carers.TooManyCarerRequests as error:
                    return care.too_many_carer_requests(request, error)
                failed = not saved
                subscriber.refresh_from_db()
            elif action == "resume":
                subscriber = subscriber_services.subscriber_resume(subscriber_id=subscriber.pk)
                saved = True
            elif action == "unsubscribe":  # first press: ask, and offer a break or fewer emails instead
                return _private(render(request, "nurture/unsubscribe_confirm.html", {"subscriber": subscriber}))
            elif action == "unsubscribe_confirmed":
                subscriber = subscriber_services.subscriber_unsubscribe(subscriber_id=subscriber.pk, source="preferences_page")
                return _private(render(request, "nurture/unsubscribed.html", {"subscriber": subscriber}))
            elif action == "new_links":  # every earlier link stops working, and every carer hand-off ends
                subscriber_services.subscriber_new_links_send(
                    subscriber_id=subscriber.pk, enqueue=tasks.enqueue_new_links, notify=tasks.enqueue_carer_notice
                )
                return _private(render(request, "nurture/new_links_sent.html"))
            elif action == "erase":  # first press: say what goes and what stays, ask again
                return _private(render(request, "nurture/erase_confirm.html", {"subscriber": subscriber}))
            elif action == "erase_confirmed":
                retention.subscriber_erase(subscriber_id=subscriber.pk)
                return _private(render(request, "nurture/erased.html"))
            elif action != "save":  # not one of this page's buttons: change nothing, say so
                unknown_action = failed = True
            else:
                form = PreferencesForm(request.POST, instance=Subscriber.objects.get(pk=subscriber.pk))
                if form.is_valid():
                    data = form.cleaned_data
                    subscriber = subscriber_services.subscriber_update_preferences(
                        subscriber_id=subscriber.pk,
                        first_name=data["first_name"],
                        stage=data["stage"],
                        language=data["language"],
                        cadence=data["cadence"],
                    )
                    form = PreferencesForm(instance=subscriber)
                    forms = care.care_forms(subscriber)
                    saved = True
                else:
                    subscriber.refresh_from_db()
    with translation.override(subscriber.language):
        context = {
            "form": form, "subscriber": subscriber, "saved": saved, "token": token, "unknown_action": unknown_action,
            "done": action if saved else "",  # the section whose result the page shows, where it was pressed
            "handoff": recipients.open_carer_handoff(subscriber_id=subscriber.pk), **forms,
        }
        return _private(render(request, "nurture/preferences.html", context, status=400 if form.errors or failed else 200))


@require_http_methods(["GET"])
def view_online(request, token: str):
    """An email as a web page, from its "view in browser" link. Its "manage your emails" link
    leads to the "email me a new link" page: this page mints no preference or erase link."""
    try:
        delivery = subscriber_services.delivery_from_view_token(token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.VIEW_ONLINE, token, error)
    manage_url = tokens.absolute_url(reverse("nurture:new_links_request", args=[token]))
    response = HttpResponse(as_web_page(delivery_web_html(delivery, manage_url=manage_url)))
    # The email's own inline styles, nothing else (the site's policy would block its styles).
    response["Content-Security-Policy"] = settings.EMAIL_HTML_CSP
    return _private(response, referrer="no-referrer")


@require_http_methods(["GET", "POST"])
def new_links_request(request, token: str):
    """"Email me a new link" for a preference or view-online link, current or expired. The POST
    answers the same page whatever the link was (ours or not, the person still here or not); the
    email, if any, goes to the address on file, decided in the worker."""
    if request.method == "POST":
        refused = rate_limited(request, group="nurture.new_links_request")
        if refused is not None:
            return refused
        subscriber_services.subscriber_new_links_request(token=token, purposes=REFRESHABLE, enqueue=tasks.enqueue_new_links)
        return _private(render(request, "nurture/new_links_request.html", {"sent": True}))
    return _private(render(request, "nurture/new_links_request.html", {"sent": False}))


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: a button pressed without the form's cookie (cookies blocked, a page left
    open from another browser) gets a plain page saying what to do, in the site's layout and
    language, instead of Django's technical English page (whose inline styles the CSP blocks).
    The reason is not shown: it is for developers."""
    return _private(render(request, "nurture/csrf_failed.html", status=403))
