"""Public pages of the care features: pause from an email, the carer's confirm and stop links,
"Download my data", and the preference centre's care actions (treatment date, carer, pause).
Thin: forms check the input in the person's language, services write, nothing half-done."""
from __future__ import annotations

import json
import math

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from nurture import recipients, rules, tasks, tokens
from nurture.emails.links import requester_label
from nurture.emails.layout import as_web_page
from nurture.emails.messages import delivery_web_html
from nurture.export import export_for_reading, subscriber_export
from nurture.models import Delivery, Subscriber
from nurture.services import carers
from nurture.services import subscribers as subscriber_services
from nurture.web.forms import CarerForm, DeliveryPreferencesForm, PauseForm, TreatmentDateForm
from nurture.web.links import _bad_link, _private, _subscriber_from_link


@require_http_methods(["GET", "POST"])
def pause(request, token: str):
    """The "Pause these emails" link: GET shows the lengths offered, only the POST (field `weeks`) acts.
    It hands out no preference link: a pause link (shorter-lived scope) never opens the record."""
    subscriber, refused = _subscriber_from_link(request, tokens.PAUSE, token)
    if refused:
        return refused
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
                    return _private(render(request, "nurture/paused.html", {**context, "subscriber": subscriber}))
            return _private(render(request, "nurture/pause.html", {**context, "form": form}, status=400))
        return _private(render(request, "nurture/pause.html", {**context, "form": PauseForm()}))


def _handoff_page(request, token: str, *, purpose: str, action, ask_template: str, done_template: str):
    try:
        handoff = carers.handoff_from_token(purpose=purpose, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, purpose, token, error)
    subscriber = handoff.subscriber
    with translation.override(subscriber.language):
        if request.method == "POST":
            handoff = action(handoff)
            template = done_template
        else:
            template = ask_template
        stop_token = tokens.make_token(purpose=tokens.CARER_STOP, subscriber_id=subscriber.pk, extra=str(handoff.pk))
        context = {"handoff": handoff, "subscriber_name": requester_label(subscriber), "stop_token": stop_token}
        return _private(render(request, template, context))


def _handoff_view(purpose: str, action, ask_template: str, done_template: str = "", *, doc: str):
    """A one-button page behind a hand-off link: GET shows it, only the POST runs `action(handoff)`."""
    @require_http_methods(["GET", "POST"])
    def view(request, token: str):
        return _handoff_page(request, token, purpose=purpose, action=action, ask_template=ask_template,
                             done_template=done_template or ask_template)

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
    lambda h: carers.carer_stop(handoff_id=h.pk, by="subscriber", source="carer_notice_link", notify=tasks.enqueue_carer_notice),
    "nurture/carer_cancel.html",
    doc="The subscriber's \"cancel this\" from their carer notice: the POST ends the hand-off.",
)


@require_http_methods(["GET"])
def carer_view(request, token: str):
    """The web version of a carer's copy (its "view in browser" link): that copy, with the carer's
    own stop link; it opens nothing of the subscriber's."""
    try:
        subscriber_id, extra = tokens.read_token(purpose=tokens.CARER_VIEW, token=token)
        delivery = Delivery.objects.select_related("subscriber", "step__series", "carer_handoff").filter(
            pk=int(extra) if extra.isdigit() else 0, subscriber_id=subscriber_id, carer_handoff__isnull=False,
        ).first()
        if delivery is None:
            raise tokens.TokenRevoked()
    except tokens.TokenError as error:
        return _bad_link(request, tokens.CARER_VIEW, token, error)
    response = HttpResponse(as_web_page(delivery_web_html(delivery)))  # a page of its own: a main landmark
    response["Content-Security-Policy"] = settings.EMAIL_HTML_CSP
    return _private(response, referrer="no-referrer")


@require_http_methods(["GET"])
def preferences_export(request, token: str):
    """"Download my data": JSON (an attachment), or ?format=html for the same as a readable page."""
    try:
        subscriber = subscriber_services.subscriber_from_token(purpose=tokens.PREFERENCES, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.PREFERENCES, token, error)
    data = subscriber_export(subscriber_id=subscriber.pk)
    if request.GET.get("format") == "html":
        with translation.override(subscriber.language):
            readable = export_for_reading(data, time_zone=subscriber.time_zone)
            return _private(render(request, "nurture/export.html", {"data": readable, "token": token}))
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return _private(response)


# --- the preference centre's care actions ----------------------------------------------------------

CARE_ACTIONS = ("pause", "treatment_date", "treatment_date_remove", "carer", "carer_stop", "timing")


def _timing_form(subscriber: Subscriber, data=None) -> DeliveryPreferencesForm:
    parts = rules.offered_day_parts(start_hour=settings.NURTURE_SEND_WINDOW_START_HOUR, end_hour=settings.NURTURE_SEND_WINDOW_END_HOUR)
    initial = {"quiet_days": sorted(rules.parse_quiet_days(subscriber.quiet_days)), "time_of_day": subscriber.time_of_day,
               "plain_text": subscriber.plain_text, "larger_text": subscriber.larger_text}
    return DeliveryPreferencesForm(data, initial=initial, parts=parts)


def care_forms(subscriber: Subscriber, data=None, *, bound: str = "") -> dict:
    """The care forms for the preference page; `bound` names the one that gets `data`."""
    return {
        "pause_form": PauseForm(data if bound == "pause" else None, preselect=False),
        "date_form": TreatmentDateForm(
            data if bound == "treatment_date" else None, initial={"treatment_date": subscriber.treatment_date}
        ),
        "carer_form": CarerForm(data if bound == "carer" else None, subscriber=subscriber),
        "timing_form": _timing_form(subscriber, data if bound == "timing" else None),
    }


def too_many_carer_requests(request, error: carers.TooManyCarerRequests) -> HttpResponse:
    """429 with when to try again (NURTURE_CARER_REQUESTS_PER_DAY)."""
    response = render(request, "nurture/too_many.html", {
        "retry_minutes": max(1, math.ceil(error.retry_after / 60)), "carer_requests": True,
    }, status=429)
    response["Retry-After"] = str(error.retry_after)
    return _private(response)


def care_action(request, subscriber: Subscriber, action: str) -> tuple[dict, bool]:
    """Run one care action from the preference page. Returns (forms for the page, saved). A form
    with errors comes back bound, so the page shows the field's error; nothing was changed.
    Raises carers.TooManyCarerRequests (the view answers 429)."""
    forms = care_forms(subscriber, request.POST, bound=action)
    form = {"pause": forms["pause_form"], "treatment_date": forms["date_form"], "carer": forms["carer_form"],
            "timing": forms["timing_form"]}.get(action)
    try:
        if action == "treatment_date_remove":
            subscriber_services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=None)
        elif action == "carer_stop":
            handoff = recipients.open_carer_handoff(subscriber_id=subscriber.pk)
            if handoff is not None:
                carers.carer_stop(handoff_id=handoff.pk, by="subscriber", source="preferences_page",
                                  notify=tasks.enqueue_carer_notice)
        elif not form.is_valid():
            return forms, False
        elif action == "pause":
            subscriber_services.subscriber_pause(subscriber_id=subscriber.pk, weeks=form.cleaned_data["weeks"])
        elif action == "treatment_date":
            subscriber_services.subscriber_set_treatment_date(
                subscriber_id=subscriber.pk, treatment_date=form.cleaned_data["treatment_date"]
            )
        elif action == "timing":
            subscriber_services.subscriber_set_delivery_preferences(subscriber_id=subscriber.pk, **form.cleaned_data)
        elif action == "carer":
            carers.carer_request(
                subscriber_id=subscriber.pk, carer_email=form.cleaned_data["carer_email"], mode=form.cleaned_data["mode"],
                enqueue=tasks.enqueue_carer_confirmation, notify=tasks.enqueue_carer_notice,
            )
    except subscriber_services.InputError as error:
        form.add_error(error.field, error.message)
        return forms, False
    subscriber.refresh_from_db()
    return care_forms(subscriber), True
