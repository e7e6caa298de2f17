"""Public pages of the care features: pause from an email, the carer's confirm and stop links,
"Download my data", and the preference centre's care actions (treatment date, carer, pause).
Thin: forms check the input in the person's language, services write, nothing half-done."""
from __future__ import annotations

import json

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_http_methods

from nurture import recipients, tasks, tokens
from nurture.emails.links import requester_label
from nurture.export import export_for_reading, subscriber_export
from nurture.models import CarerHandoff, Subscriber
from nurture.services import carers
from nurture.services import subscribers as subscriber_services
from nurture.web.forms import CarerForm, PauseForm, TreatmentDateForm
from nurture.web.links import _bad_link, _private, _subscriber_from_link


def _prefs_token(subscriber_id: int) -> str:
    return tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber_id)


@require_http_methods(["GET", "POST"])
def pause(request, token: str):
    """The "Pause these emails" link: GET shows the lengths offered, only the POST (field `weeks`) acts."""
    subscriber, refused = _subscriber_from_link(request, tokens.PAUSE, token)
    if refused:
        return refused
    with translation.override(subscriber.language):
        context = {"subscriber": subscriber, "prefs_token": _prefs_token(subscriber.pk)}
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
        context = {"handoff": handoff, "subscriber_address": requester_label(subscriber), "stop_token": stop_token}
        return _private(render(request, template, context))


@require_http_methods(["GET", "POST"])
def carer_confirm(request, token: str):
    """The carer's own confirmation: GET explains who asked and what they would get; the POST agrees."""
    def agree(handoff: CarerHandoff) -> CarerHandoff:
        if handoff.status != CarerHandoff.Status.PENDING:
            return handoff  # stopped or replaced meanwhile: nothing to agree to
        return carers.carer_confirm(handoff_id=handoff.pk)

    return _handoff_page(request, token, purpose=tokens.CARER_CONFIRM, action=agree,
                         ask_template="nurture/carer_confirm.html", done_template="nurture/carer_confirmed.html")


@require_http_methods(["GET", "POST"])
def carer_stop(request, token: str):
    """The carer's "stop receiving these emails": GET asks, the POST stops the hand-off."""
    def stop(handoff: CarerHandoff) -> CarerHandoff:
        return carers.carer_stop(handoff_id=handoff.pk, by="carer", source="carer_link")

    return _handoff_page(request, token, purpose=tokens.CARER_STOP, action=stop,
                         ask_template="nurture/carer_stop.html", done_template="nurture/carer_stop.html")


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

CARE_ACTIONS = ("pause", "treatment_date", "treatment_date_remove", "carer", "carer_stop")


def care_forms(subscriber: Subscriber, data=None, *, bound: str = "") -> dict:
    """The care forms for the preference page; `bound` names the one that gets `data`."""
    return {
        "pause_form": PauseForm(data if bound == "pause" else None, preselect=False),
        "date_form": TreatmentDateForm(
            data if bound == "treatment_date" else None, initial={"treatment_date": subscriber.treatment_date}
        ),
        "carer_form": CarerForm(data if bound == "carer" else None, subscriber=subscriber),
    }


def care_action(request, subscriber: Subscriber, action: str) -> tuple[dict, bool]:
    """Run one care action from the preference page. Returns (forms for the page, saved). A form
    with errors comes back bound, so the page shows the field's error; nothing was changed."""
    forms = care_forms(subscriber, request.POST, bound=action)
    form = {"pause": forms["pause_form"], "treatment_date": forms["date_form"], "carer": forms["carer_form"]}.get(action)
    try:
        if action == "treatment_date_remove":
            subscriber_services.subscriber_set_treatment_date(subscriber_id=subscriber.pk, treatment_date=None)
        elif action == "carer_stop":
            handoff = recipients.open_carer_handoff(subscriber_id=subscriber.pk)
            if handoff is not None:
                carers.carer_stop(handoff_id=handoff.pk, by="subscriber", source="preferences_page")
        elif not form.is_valid():
            return forms, False
        elif action == "pause":
            subscriber_services.subscriber_pause(subscriber_id=subscriber.pk, weeks=form.cleaned_data["weeks"])
        elif action == "treatment_date":
            subscriber_services.subscriber_set_treatment_date(
                subscriber_id=subscriber.pk, treatment_date=form.cleaned_data["treatment_date"]
            )
        elif action == "carer":
            carers.carer_request(
                subscriber_id=subscriber.pk, carer_email=form.cleaned_data["carer_email"], mode=form.cleaned_data["mode"],
                enqueue=tasks.enqueue_carer_confirmation,
            )
    except subscriber_services.InputError as error:
        form.add_error(error.field, error.message)
        return forms, False
    subscriber.refresh_from_db()
    return care_forms(subscriber), True
