"""Public pages: thin views over the subscriber services."""
from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import emails, health, tasks, tokens
from nurture.forms import CONSENT_TEXT, PreferencesForm, SignupForm
from nurture.models import Subscriber
from nurture.services import retention
from nurture.services import subscribers as subscriber_services


def _bad_link(request, purpose: str, error: tokens.TokenError):
    return render(
        request, "nurture/bad_link.html", {"purpose": purpose, "expired": error.expired}, status=400
    )


# The organisation's own site may post this form from another origin, without our CSRF token.
# Nothing starts without the confirmation email (double opt-in), and re-sends are throttled.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.method == "POST":
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            with translation.override(data["language"]):
                consent_text = str(CONSENT_TEXT)
            subscriber_services.subscriber_sign_up(
                email=data["email"],
                first_name=data["first_name"],
                stage=data["stage"],
                language=data["language"],
                time_zone=data["time_zone"],
                consent_text=consent_text,
                enqueue=tasks.enqueue_confirmation,
            )
            # The same page whether the address was new or known: it reveals nothing about who is subscribed.
            return redirect("nurture:signup_done")
        return render(request, "nurture/signup.html", {"form": form}, status=400)
    # The email language starts as the page's language (Accept-Language or the switch above).
    language = translation.get_language() or "en"
    initial = {"language": "es" if language.startswith("es") else "en"}
    return render(request, "nurture/signup.html", {"form": SignupForm(initial=initial)})


def _dev_outbox_enabled() -> bool:
    return settings.DEBUG and settings.EMAIL_BACKEND == "nurture.mail.OutboxEmailBackend"


def signup_done(request):
    return render(request, "nurture/signup_done.html", {"dev_outbox": _dev_outbox_enabled()})


def _one_button_page(request, token: str, *, purpose: str, action, ask_template: str, done_template: str):
    """GET shows a page with one button; only the POST acts. Mail scanners open links, but they
    do not press buttons, so a scanned link neither confirms nor unsubscribes anyone."""
    try:
        subscriber = subscriber_services.subscriber_from_token(purpose=purpose, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, purpose, error)
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
        return _bad_link(request, tokens.PREFERENCES, error)
    with translation.override(subscriber.language):
        form = PreferencesForm(instance=subscriber)
        saved = False
        if request.method == "POST":
            action = request.POST.get("action", "save")
            if action == "pause":
                subscriber = subscriber_services.subscriber_pause(subscriber_id=subscriber.pk)
                saved = True
            elif action == "resume":
                subscriber = subscriber_services.subscriber_resume(subscriber_id=subscriber.pk)
                saved = True
            elif action == "unsubscribe":
                subscriber = subscriber_services.subscriber_unsubscribe(subscriber_id=subscriber.pk)
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
                    saved = True
                else:
                    subscriber.refresh_from_db()
    with translation.override(subscriber.language):
        return render(
            request,
            "nurture/preferences.html",
            {"form": form, "subscriber": subscriber, "saved": saved, "token": token},
            status=400 if form.errors else 200,
        )


@require_http_methods(["GET"])
def view_online(request, token: str):
    """An email as a web page, from its signed "view in browser" link. Any bad link: the plain page."""
    try:
        delivery = subscriber_services.delivery_from_view_token(token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.VIEW_ONLINE, error)
    response = HttpResponse(emails.delivery_web_html(delivery))
    # The URL carries a token: keep it out of caches, search engines and Referer headers.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def healthz(request):
    checks = {"database": health.database_ok(), "broker": health.broker_ok()}
    failing = [name for name, ok in checks.items() if not ok]
    body = {"status": "ok" if not failing else "unavailable", "checks": {k: ("ok" if v else "unreachable") for k, v in checks.items()}}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


def dev_outbox(request, name: str | None = None):
    """DEBUG only: the emails written under var/outbox/, newest first."""
    if not _dev_outbox_enabled():
        raise Http404()
    outbox = settings.NURTURE_OUTBOX_DIR
    if name:
        path = outbox / name
        if path.parent != outbox or path.suffix != ".eml" or not path.is_file():
            raise Http404()
        return dev_outbox_message(request, path)
    files = sorted(outbox.glob("*.eml"), reverse=True) if outbox.is_dir() else []
    return render(request, "nurture/dev_outbox.html", {"messages_": [_summary(p) for p in files[:200]]})


def _summary(path):
    import email
    from email import policy

    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return {"name": path.name, "subject": msg["Subject"], "to": msg["To"], "date": msg["Date"]}


def dev_outbox_message(request, path):
    import email
    from email import policy

    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    if request.GET.get("part") == "text":
        part = msg.get_body(preferencelist=("plain",))
        return HttpResponse(part.get_content() if part else "", content_type="text/plain; charset=utf-8")
    if request.GET.get("raw"):
        return FileResponse(path.open("rb"), content_type="text/plain; charset=utf-8")
    part = msg.get_body(preferencelist=("html", "plain"))
    content = part.get_content() if part else ""
    if part is not None and part.get_content_type() == "text/plain":
        return HttpResponse(content, content_type="text/plain; charset=utf-8")
    return HttpResponse(content)
