"""Public pages of the care features: pause from an email, and the carer's pages (confirm, stop, the
subscriber's approval or cancel from their carer notice, the web version of a carer's copy). The
preference centre's care actions (treatment date, carer, pause) are in nurture/web/preferences.py.
Thin: forms check the input in the person's language, services write, nothing half-done."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import tasks, tokens
from nurture.emails.links import requester_label
from nurture.emails.layout import as_web_page
from nurture.emails.messages import delivery_web_html
from nurture.models import Subscriber
from nurture.selectors.deliveries import carer_copy_from_token
from nurture.selectors.subscribers import carer_handoff_from_token
from nurture.services import carers
from nurture.services import subscribers as subscriber_services
from nurture.web.answers import private
from nurture.web.forms import PauseForm
from nurture.web.token_view import token_view


@require_http_methods(["GET", "POST"])
@token_view(tokens.PAUSE)
def pause(request, subscriber: Subscriber, token: str):
    """The "Pause these emails" link: GET shows the lengths offered, only the POST (field `weeks`) acts.
    It hands out no preference link: a pause link (shorter-lived scope) never opens the record."""
    with translation.override(subscriber.language):
        context = {"subscriber": subscriber}
        can_pause = subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED)
        if request.method == "POST" and can_pause:
            form = PauseForm(request.POST)
            if form.is_valid():
                try:
                    subscriber = subscriber_services.subscriber_pause(
                        subscriber_id=subscriber.pk, weeks=form.cleaned_data["weeks"], source="pause_link"
                    )
                except subscriber_services.InputError as error:
                    form.add_error(error.field, error.message)
                else:
                    return private(render(request, "nurture/paused.html", {**context, "subscriber": subscriber}))
            return private(render(request, "nurture/pause.html", {**context, "form": form}, status=400))
        return private(render(request, "nurture/pause.html", {**context, "form": PauseForm()}))


def _handoff_view(purpose: str, action, ask_template: str, done_template: str = "", *, doc: str):
    """A one-button page behind a hand-off link: GET shows it, only the POST runs `action(handoff)`."""
    @require_http_methods(["GET", "POST"])
    @token_view(purpose, read=carer_handoff_from_token)
    def view(request, handoff, token: str):
        subscriber = handoff.subscriber
        with translation.override(subscriber.language):
            if request.method == "POST":
                handoff = action(handoff)
                template = done_template or ask_template
            else:
                template = ask_template
            stop_token = tokens.make_token(purpose=tokens.CARER_STOP, subscriber_id=subscriber.pk,
                                           extra=str(handoff.pk))
            context = {"handoff": handoff, "subscriber_name": requester_label(subscriber), "stop_token": stop_token}
            return private(render(request, template, context))

    view.__doc__ = doc
    return view


carer_confirm = _handoff_view(
    tokens.CARER_CONFIRM, lambda h: carers.carer_confirm(handoff_id=h.pk, notify=tasks.enqueue_carer_notice),
    "nurture/carer_confirm.html", "nurture/carer_confirmed.html",
    doc="The carer's own confirmation: GET explains who asked and what they would get; the POST agrees.",
)
# RFC 8058: the carer's copies carry this link as their one-click List-Unsubscribe (no CSRF token).
carer_stop = csrf_exempt(_handoff_view(
    tokens.CARER_STOP,
    lambda h: carers.carer_stop(handoff_id=h.pk, by="carer", source="carer_link", notify=tasks.enqueue_carer_notice),
    "nurture/carer_stop.html",
    doc="The carer's own stop: ends the hand-off, and only it (the subscriber's own emails go on).",
))
carer_approve = _handoff_view(
    tokens.CARER_APPROVE, lambda h: carers.carer_subscriber_confirm(handoff_id=h.pk, notify=tasks.enqueue_carer_notice),
    "nurture/carer_approve.html",
    doc='The subscriber\'s own confirmation of "instead of me", from the notice in their inbox.',
)
carer_cancel = _handoff_view(
    tokens.CARER_CANCEL,
    lambda h: carers.carer_stop(handoff_id=h.pk, by="subscriber", source="carer_notice_link",
                                notify=tasks.enqueue_carer_notice),
    "nurture/carer_cancel.html",
    doc="The subscriber's \"cancel this\" from their carer notice: the POST ends the hand-off.",
)


@require_http_methods(["GET"])
@token_view(tokens.CARER_VIEW, read=carer_copy_from_token)
def carer_view(request, delivery, token: str):
    """The web version of a carer's copy (its "view in browser" link): that copy, with the carer's
    own stop link; it opens nothing of the subscriber's."""
    response = HttpResponse(as_web_page(delivery_web_html(delivery)))  # a page of its own: a main landmark
    response["Content-Security-Policy"] = settings.EMAIL_HTML_CSP
    return private(response, referrer="no-referrer")
