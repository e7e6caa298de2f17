""""Tell us someone has died", from the foot of the preference centre and of the carer's pages.

Two steps, neither acting on a GET (mail scanners open links): the first page explains, with care,
what will happen (and, on the carer's page, offers one email with bereavement-support details); the
second is a plain confirmation whose POST reports it (services/bereavement.py). A second report
changes nothing and says so."""
from __future__ import annotations

from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_http_methods

from nurture import tasks, tokens
from nurture.models import Bereavement, CarerHandoff, Subscriber
from nurture.services import bereavement as bereavement_services
from nurture.services import carers
from nurture.services import subscribers as subscriber_services
from nurture.web.links import _bad_link, _private


def _page(request, subscriber: Subscriber, *, source: str, handoff: CarerHandoff | None):
    offer_support = source == Bereavement.Source.CARER_PAGE and bereavement_services.carer_may_ask_for_support(handoff)
    support = offer_support and request.POST.get("support", request.GET.get("support", "")) == "yes"
    context = {"offer_support": offer_support, "support": support, "from_carer": handoff is not None}
    with translation.override(subscriber.language):
        if Bereavement.objects.filter(subscriber_id=subscriber.pk).exists():
            return _private(render(request, "nurture/bereavement_done.html", {**context, "already": True}))
        if request.method == "POST":
            outcome = bereavement_services.bereavement_report(
                subscriber_id=subscriber.pk, source=source, carer_handoff_id=handoff.pk if handoff else None,
                carer_wants_support=support, enqueue_support=tasks.enqueue_bereavement_support,
            )
            return _private(render(request, "nurture/bereavement_done.html", {
                **context, "already": not outcome.created, "support_requested": bool(outcome.bereavement.support_email_to),
            }))
        template = "nurture/bereavement_confirm.html" if request.GET.get("step") == "confirm" else "nurture/bereavement.html"
        return _private(render(request, template, context))


@require_http_methods(["GET", "POST"])
def from_preferences(request, token: str):
    try:
        subscriber = subscriber_services.subscriber_from_token(purpose=tokens.PREFERENCES, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.PREFERENCES, token, error)
    return _page(request, subscriber, source=Bereavement.Source.PREFERENCES_PAGE, handoff=None)


@require_http_methods(["GET", "POST"])
def from_carer(request, token: str):
    """From the carer's pages: the carer's own stop link's token names the hand-off."""
    try:
        handoff = carers.handoff_from_token(purpose=tokens.CARER_STOP, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.CARER_STOP, token, error)
    return _page(request, handoff.subscriber, source=Bereavement.Source.CARER_PAGE, handoff=handoff)
