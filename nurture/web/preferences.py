"""The preference centre (/preferences/<token>/) and "Download my data". Each button of the page posts
`action` (no action: "save"); PREFERENCE_ACTIONS says, for each, the service it runs, the form whose
fields it posts, and how the page answers: on the preference page, saying what was done where it was
pressed (`done`), or with a page of its own (the first press of "Stop all emails" and "Delete my data"
asks again there). Thin: forms check the input in the person's language, services write."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_http_methods

from nurture import rules, tasks, tokens
from nurture.export import export_for_reading, subscriber_export
from nurture.models import Subscriber
from nurture.selectors.subscribers import open_carer_handoff
from nurture.services import carers, retention
from nurture.services import subscribers as subscriber_services
from nurture.web.answers import private, too_many_carer_requests
from nurture.web.forms import CarerForm, DeliveryPreferencesForm, PauseForm, PreferencesForm, TreatmentDateForm
from nurture.web.token_view import token_view


def _timing_form(subscriber: Subscriber, data=None) -> DeliveryPreferencesForm:
    parts = rules.offered_day_parts(start_hour=settings.NURTURE_SEND_WINDOW_START_HOUR,
                                    end_hour=settings.NURTURE_SEND_WINDOW_END_HOUR)
    initial = {"quiet_days": sorted(rules.parse_quiet_days(subscriber.quiet_days)),
               "time_of_day": subscriber.time_of_day,
               "plain_text": subscriber.plain_text, "larger_text": subscriber.larger_text}
    return DeliveryPreferencesForm(data, initial=initial, parts=parts)


def page_forms(subscriber: Subscriber, data=None, *, bound: str = "") -> dict:
    """The preference page's forms; the one named `bound` (a key here) gets the posted `data`."""
    def given(name: str):
        return data if bound == name else None

    return {
        # A fresh instance: a form that fails its checks must not leave its values on `subscriber`.
        "form": PreferencesForm(data, instance=Subscriber.objects.get(pk=subscriber.pk)) if bound == "form"
        else PreferencesForm(instance=subscriber),
        "pause_form": PauseForm(given("pause_form"), preselect=False),
        "date_form": TreatmentDateForm(given("date_form"), initial={"treatment_date": subscriber.treatment_date}),
        "carer_form": CarerForm(given("carer_form"), subscriber=subscriber),
        "timing_form": _timing_form(subscriber, given("timing_form")),
    }


@dataclass(frozen=True)
class PreferenceAction:
    """One button of the preference page."""

    run: Callable[[Subscriber, dict], object] | None = None  # (subscriber, the form's cleaned data); None: it only asks
    form: str = ""  # the form whose fields it posts (a key of page_forms); "" for a button alone
    page: str = ""  # the page it answers with; "": the preference page, its result shown where it was pressed
    page_names_subscriber: bool = False  # the answer page is given the subscriber


def _save(subscriber, data):
    return subscriber_services.subscriber_update_preferences(
        subscriber_id=subscriber.pk, first_name=data["first_name"], stage=data["stage"], language=data["language"],
        cadence=data["cadence"],
    )


def _carer(subscriber, data):
    return carers.carer_request(
        subscriber_id=subscriber.pk, carer_email=data["carer_email"], mode=data["mode"],
        enqueue=tasks.enqueue_carer_confirmation, notify=tasks.enqueue_carer_notice,
    )


def _carer_stop(subscriber, _data):
    handoff = open_carer_handoff(subscriber_id=subscriber.pk)
    if handoff is not None:
        carers.carer_stop(handoff_id=handoff.pk, by="subscriber", source="preferences_page",
                          notify=tasks.enqueue_carer_notice)


PREFERENCE_ACTIONS = {
    "save": PreferenceAction(_save, form="form"),
    "resume": PreferenceAction(lambda s, _: subscriber_services.subscriber_resume(subscriber_id=s.pk)),
    "pause": PreferenceAction(
        lambda s, data: subscriber_services.subscriber_pause(subscriber_id=s.pk, weeks=data["weeks"]), form="pause_form"
    ),
    "treatment_date": PreferenceAction(
        lambda s,
        data: subscriber_services.subscriber_set_treatment_date(subscriber_id=s.pk,
                                                                treatment_date=data["treatment_date"]),
        form="date_form",
    ),
    "treatment_date_remove": PreferenceAction(
        lambda s, _: subscriber_services.subscriber_set_treatment_date(subscriber_id=s.pk, treatment_date=None)
    ),
    "timing": PreferenceAction(
        lambda s, data: subscriber_services.subscriber_set_delivery_preferences(subscriber_id=s.pk, **data),
        form="timing_form"
    ),
    "carer": PreferenceAction(_carer, form="carer_form"),
    "carer_stop": PreferenceAction(_carer_stop),  # every earlier carer link stops with the hand-off
    # First press: ask, and offer a break or fewer emails instead.
    "unsubscribe": PreferenceAction(page="nurture/unsubscribe_confirm.html", page_names_subscriber=True),
    "unsubscribe_confirmed": PreferenceAction(
        lambda s, _: subscriber_services.subscriber_unsubscribe(subscriber_id=s.pk, source="preferences_page"),
        page="nurture/unsubscribed.html", page_names_subscriber=True,
    ),
    # Every earlier link stops working, and every carer hand-off ends.
    "new_links": PreferenceAction(
        lambda s, _: subscriber_services.subscriber_new_links_send(
            subscriber_id=s.pk, enqueue=tasks.enqueue_new_links, notify=tasks.enqueue_carer_notice
        ),
        page="nurture/new_links_sent.html",
    ),
    # First press: say what goes and what stays, ask again.
    "erase": PreferenceAction(page="nurture/erase_confirm.html", page_names_subscriber=True),
    "erase_confirmed": PreferenceAction(lambda s, _: retention.subscriber_erase(subscriber_id=s.pk),
                                        page="nurture/erased.html"),
}


def _run(request, subscriber: Subscriber, name: str) -> tuple[dict, bool, HttpResponse | None]:
    """Run one button's action: (the page's forms, whether it was done, or the answer page instead).
    A form with errors comes back bound, so the page shows the field's error; nothing was changed."""
    action = PREFERENCE_ACTIONS[name]
    if action.run is None:
        return {}, False, private(render(request, action.page, {"subscriber": subscriber}))
    forms = page_forms(subscriber, request.POST, bound=action.form)
    form = forms.get(action.form)
    if form is not None and not form.is_valid():
        return forms, False, None
    try:
        result = action.run(subscriber, form.cleaned_data if form is not None else {})
    except subscriber_services.InputError as error:
        if form is None:
            raise
        form.add_error(error.field, error.message)
        return forms, False, None
    except carers.TooManyCarerRequests as error:
        return forms, False, too_many_carer_requests(request, retry_after=error.retry_after)
    if action.page:
        return {}, True, private(render(request, action.page,
                                        {"subscriber": result} if action.page_names_subscriber else {}))
    subscriber.refresh_from_db()
    return page_forms(subscriber), True, None


@require_http_methods(["GET", "POST"])
@token_view(tokens.PREFERENCES)
def preferences(request, subscriber: Subscriber, token: str):
    if subscriber.status == Subscriber.Status.DECEASED:  # final: nothing on this page applies any more
        with translation.override(subscriber.language):
            return private(render(request, "nurture/bereavement_done.html", {"already": True}))
    forms, saved, unknown_action, name = page_forms(subscriber), False, False, ""
    with translation.override(subscriber.language):
        if request.method == "POST":
            name = request.POST.get("action", "save")
            if name in PREFERENCE_ACTIONS:
                forms, saved, answer = _run(request, subscriber, name)
                if answer is not None:
                    return answer
                subscriber.refresh_from_db()
            else:  # not one of this page's buttons: change nothing, say so
                unknown_action = True
    failed = request.method == "POST" and not saved
    with translation.override(subscriber.language):
        context = {
            "subscriber": subscriber, "saved": saved, "token": token, "unknown_action": unknown_action,
            "done": name if saved else "",  # the section whose result the page shows, where it was pressed
            "handoff": open_carer_handoff(subscriber_id=subscriber.pk), **forms,
        }
        return private(render(request, "nurture/preferences.html", context,
                              status=400 if forms["form"].errors or failed else 200))


@require_http_methods(["GET"])
@token_view(tokens.PREFERENCES)
def preferences_export(request, subscriber: Subscriber, token: str):
    """"Download my data": JSON (an attachment), or ?format=html for the same as a readable page."""
    data = subscriber_export(subscriber_id=subscriber.pk)
    if request.GET.get("format") == "html":
        with translation.override(subscriber.language):
            readable = export_for_reading(data, time_zone=subscriber.time_zone)
            return private(render(request, "nurture/export.html", {"data": readable, "token": token}))
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return private(response)
