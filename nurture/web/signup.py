"""The sign-up form and its thank-you page."""
from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import tasks
from nurture.services import subscribers as subscriber_services
from nurture.web.forms import CONSENT_TEXT, SignupForm


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
                treatment_date=data.get("treatment_date"),
            )
            # The same page whether the address was new or known: it reveals nothing about who is subscribed.
            return redirect("nurture:signup_done")
        return render(request, "nurture/signup.html", {"form": form}, status=400)
    # The email language starts as the page's language (Accept-Language or the switch above).
    language = translation.get_language() or "en"
    initial = {"language": "es" if language.startswith("es") else "en"}
    return render(request, "nurture/signup.html", {"form": SignupForm(initial=initial)})


def dev_outbox_enabled() -> bool:
    return settings.DEBUG and settings.EMAIL_BACKEND == "nurture.mail.OutboxEmailBackend"


def signup_done(request):
    return render(request, "nurture/signup_done.html", {"dev_outbox": dev_outbox_enabled()})


