"""The pages behind the links in emails: confirm, unsubscribe, preferences, view in browser."""
from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import selectors, tokens
from nurture.emails.messages import delivery_web_html
from nurture.models import Subscriber
from nurture.services import retention
from nurture.services import subscribers as subscriber_services
from nurture.web import care
from nurture.web.forms import PreferencesForm
from nurture.web.responses import bad_link, private


def _one_button_page(request, token: str, *, purpose: str, action, ask_template: str, done_template: str):
    """GET shows a page with one button; only the POST acts. Mail scanners open links, but they
    do not press buttons, so a scanned link neither confirms nor unsubscribes anyone."""
    try:
        subscriber = subscriber_services.subscriber_from_token(purpose=purpose, token=token)
    except tokens.TokenError as error:
        return bad_link(request, purpose, error)
    with translation.override(subscriber.language):
        if request.method == "POST":
            subscriber = action(subscriber_id=subscriber.pk)
            return render(request, done_template, {"subscriber": subscriber, "token": _prefs_token(subscriber)})
        return render(request, ask_template, {"subscriber": subscriber})


def _prefs_token(subscriber: Subscriber) -> str:
    return tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)


@require_http_methods(["GET", "POST"])
def confirm(request, token: str):
    return _one_button_page(
        request, token, purpose=tokens.CONFIRM, action=subscriber_services.subscriber_confirm,
        ask_template="nurture/confirm.html", done_template="nurture/confirmed.html",
    )


@csrf_exempt  # RFC 8058 one-click POSTs come from mail clients, which carry no CSRF token.
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    return _one_button_page(
        request, token, purpose=tokens.UNSUBSCRIBE, action=subscriber_services.subscriber_unsubscribe,
        ask_template="nurture/unsubscribe.html", done_template="nurture/unsubscribed.html",
    )


@require_http_methods(["GET", "POST"])
def preferences(request, token: str):
    try:
        subscriber = subscriber_services.subscriber_from_token(purpose=tokens.PREFERENCES, token=token)
    except tokens.TokenError as error:
        return bad_link(request, tokens.PREFERENCES, error)
    with translation.override(subscriber.language):
        form = PreferencesForm(instance=subscriber)
        forms = care.care_forms(subscriber)
        saved = False
        failed = False
        if request.method == "POST":
            action = request.POST.get("action", "save")
            if action in care.CARE_ACTIONS:  # pause, treatment date, carer: their own forms
                forms, saved = care.care_action(request, subscriber, action)
                failed = not saved
                subscriber.refresh_from_db()
            elif action == "resume":
                subscriber = subscriber_services.subscriber_resume(subscriber_id=subscriber.pk)
                saved = True
            elif action == "unsubscribe":
                subscriber = subscriber_services.subscriber_unsubscribe(subscriber_id=subscriber.pk, source="preferences_page")
                return render(request, "nurture/unsubscribed.html", {"subscriber": subscriber, "token": token})
            elif action == "erase":  # first press: say what goes and what stays, ask again
                return render(request, "nurture/erase_confirm.html", {"subscriber": subscriber})
            elif action == "erase_confirmed":
                retention.subscriber_erase(subscriber_id=subscriber.pk)
                return render(request, "nurture/erased.html")
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
            "form": form, "subscriber": subscriber, "saved": saved, "token": token,
            "handoff": selectors.open_carer_handoff(subscriber_id=subscriber.pk), **forms,
        }
        return render(request, "nurture/preferences.html", context, status=400 if form.errors or failed else 200)


@require_http_methods(["GET"])
def view_online(request, token: str):
    """An email as a web page, from its signed "view in browser" link. Any bad link: the plain page."""
    try:
        delivery = subscriber_services.delivery_from_view_token(token=token)
    except tokens.TokenError as error:
        return bad_link(request, tokens.VIEW_ONLINE, error)
    # The URL carries a token: keep it out of caches, search engines and Referer headers.
    return private(HttpResponse(delivery_web_html(delivery)), referrer="no-referrer")
