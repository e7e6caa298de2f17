"""The sign-up form and its thank-you page.

The same work for every address (docs/security.md, "Public surface"): count the post against the
client's rate limit, check the honeypot and the fields, store the request, enqueue the worker
that decides. Nothing here looks the address up, so the time and the answer say nothing about
who is subscribed.
"""
from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import tasks
from nurture.services import signup as signup_services
from nurture.web.answers import rate_limited
from nurture.web.forms import CONSENT_TEXT, HONEYPOT_FIELD, SignupForm


# The organisation's own site may post this form from another origin, without our CSRF token.
# Nothing starts without the confirmation email (double opt-in), and sign-up emails are throttled.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.method == "POST":
        refused = rate_limited(request, group="nurture.signup")
        if refused is not None:
            return refused
        if request.POST.get(HONEYPOT_FIELD):
            return redirect("nurture:signup_done")  # a robot: the usual answer, nothing stored or sent
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            with translation.override(data["language"]):
                consent_text = str(CONSENT_TEXT)
            signup_services.signup_request_store(
                email=data["email"],
                first_name=data["first_name"],
                stage=data["stage"],
                language=data["language"],
                time_zone=data["time_zone"],
                consent_text=consent_text,
                enqueue=tasks.enqueue_signup,
                treatment_date=data.get("treatment_date"),
            )
            return redirect("nurture:signup_done")
        language = form.data.get("language") if form.data.get("language") in ("en", "es") else None
        with translation.override(language or translation.get_language() or "en"):
            return render(request, "nurture/signup.html", {"form": form}, status=400)
    # The email language starts as the page's language (Accept-Language or the switch above).
    language = translation.get_language() or "en"
    initial = {"language": "es" if language.startswith("es") else "en"}
    return render(request, "nurture/signup.html", {"form": SignupForm(initial=initial)})


def dev_outbox_enabled() -> bool:
    return settings.DEBUG and settings.EMAIL_BACKEND == "nurture.mail.OutboxEmailBackend"


def signup_done(request):
    return render(request, "nurture/signup_done.html", {"dev_outbox": dev_outbox_enabled()})
