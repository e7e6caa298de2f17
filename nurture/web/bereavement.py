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
from nurture.selectors.subscribers import carer_handoff_from_token, subscriber_bereavement_reported
from nurture.services import bereavement as bereavement_services
from nurture.web.answers import private
from nurture.web.token_view import token_view


def _page(request, subscriber: Subscriber, *, source: str, handoff: CarerHandoff | None):
    offer_support = source == Bereavement.Source.CARER_PAGE and bereavement_services.carer_may_ask_for_support(handoff)
    support = offer_support and request.POST.get("support", request.GET.get("support", "")) == "yes"
    context = {"offer_support": offer_support, "support": support, "from_carer": handoff is not None}
    with translation.override(subscriber.language):
        if subscriber_bereavement_reported(subscriber_id=subscriber.pk):
            return private(render(request, "nurture/bereavement_done.html", {**context, "already": True}))
        if request.method == "POST":
            outcome = bereavement_services.bereavement_report(
                subscriber_id=subscriber.pk, source=source, carer_handoff_id=handoff.pk if handoff else None,
                carer_wants_support=support, enqueue_support=tasks.enqueue_bereavement_support,
            )
            return private(render(request, "nurture/bereavement_done.html", {
                **context, "already": not outcome.created,
                "support_requested": bool(outcome.bereavement.support_email_to),
            }))
        template = (
            "nurture/bereavement_confirm.html" if request.GET.get("step") == "confirm" else "nurture/bereavement.html"
        )
        return private(render(request, template, context))


@require_http_methods(["GET", "POST"])
@token_view(tokens.PREFERENCES)
def from_preferences(request, subscriber: Subscriber, token: str):
    return _page(request, subscriber, source=Bereavement.Source.PREFERENCES_PAGE, handoff=None)


@require_http_methods(["GET", "POST"])
@token_view(tokens.CARER_STOP, read=carer_handoff_from_token)
def from_carer(request, handoff: CarerHandoff, token: str):
    """From the carer's pages: the carer's own stop link's token names the hand-off."""
    return _page(request, handoff.subscriber, source=Bereavement.Source.CARER_PAGE, handoff=handoff)
